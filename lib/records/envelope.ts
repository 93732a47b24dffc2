// Validation of incoming records: turns untrusted JSON into a normalised Envelope, or a
// RecordError that names the field and the fix. Nothing here touches the store.
import { ACTS, DATA_TYPES, type Act, type DataType, type Envelope, type JsonObject } from "./types";
import { CanonicalError, canonicalJson } from "./canonical";
import { hashedJson, sha256Hex } from "./id";

export const MAX_RECORD_BYTES = 1024 * 1024;
const MAX_CLOCK = Number.MAX_SAFE_INTEGER;
const ENVELOPE_FIELDS = new Set(["parents", "thread", "actor", "act", "body", "clock", "data_type", "judged_by"]);
// Fields a client may echo back from a record it read (GET answers); ignored except `id`.
const ECHO_FIELDS = new Set(["id", "object", "sequence", "created_at", "duplicate"]);
const DID = /^did:[a-z0-9]+:\S+$/;

export class RecordError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** A validated record whose clock may still be unassigned (the store assigns max+1). */
export interface PreparedRecord {
  env: Envelope;
  bodyJson: string;
  clockGiven: boolean;
  claimedId?: string;
}

const invalid = (message: string) => new RecordError("INVALID_FIELD", message);

export function prepareRecord(input: unknown): PreparedRecord {
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    throw new RecordError("INVALID_RECORD", "a record must be a JSON object with act, actor, thread and body");
  }
  const raw = input as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!ENVELOPE_FIELDS.has(key) && !ECHO_FIELDS.has(key)) {
      throw new RecordError(
        "UNKNOWN_FIELD",
        `unknown field '${key}' — a record has only parents, thread, actor, act, body, clock, data_type, judged_by`,
      );
    }
  }

  const { thread, actor, act, body } = raw;
  if (typeof thread !== "string" || thread.length === 0 || !thread.isWellFormed()) {
    throw invalid("'thread' must be a non-empty string of valid Unicode, e.g. \"th_notes\"");
  }
  if (typeof actor !== "string" || !DID.test(actor) || !actor.isWellFormed()) {
    throw invalid("'actor' must be a DID string such as \"did:sync:user:alice\"");
  }
  if (typeof act !== "string" || !(ACTS as readonly string[]).includes(act)) {
    throw invalid(`'act' must be one of ${ACTS.join(", ")}`);
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw invalid("'body' must be a JSON object (use {} for an empty body)");
  }

  let clock = -1;
  const clockGiven = raw.clock !== undefined && raw.clock !== null;
  if (clockGiven) {
    if (typeof raw.clock !== "number" || !Number.isInteger(raw.clock) || raw.clock < 0 || raw.clock > MAX_CLOCK) {
      throw invalid(`'clock' must be an integer from 0 to ${MAX_CLOCK} (omit it and the daemon assigns one)`);
    }
    clock = raw.clock as number;
  }

  let data_type: DataType = "SCALAR";
  if (raw.data_type !== undefined && raw.data_type !== null) {
    if (typeof raw.data_type !== "string" || !(DATA_TYPES as readonly string[]).includes(raw.data_type)) {
      throw invalid(`'data_type' must be one of ${DATA_TYPES.join(", ")}`);
    }
    data_type = raw.data_type as DataType;
  }

  let parents: string[] = [];
  if (raw.parents !== undefined && raw.parents !== null) {
    if (!Array.isArray(raw.parents) || raw.parents.some((p) => typeof p !== "string" || p.length === 0)) {
      throw invalid("'parents' must be an array of record id strings");
    }
    parents = [...(raw.parents as string[])].sort();
  }

  let judged_by: string | null = null;
  if (raw.judged_by !== undefined && raw.judged_by !== null) {
    if (typeof raw.judged_by !== "string") throw invalid("'judged_by' must be a record id string or null");
    judged_by = raw.judged_by as string;
  }

  let claimedId: string | undefined;
  if (raw.id !== undefined) {
    if (typeof raw.id !== "string") throw invalid("'id' must be a string (or leave it out)");
    claimedId = raw.id as string;
  }

  let bodyJson: string;
  try {
    bodyJson = canonicalJson(body, 1);
  } catch (err) {
    if (err instanceof CanonicalError) throw new RecordError(err.code, err.message);
    throw err;
  }
  // Cheap upper bound first; exact UTF-8 size only when it could matter.
  const fixed = thread.length + actor.length + parents.length * 70 + (judged_by?.length ?? 0) + 160;
  if ((bodyJson.length + fixed) * 3 > MAX_RECORD_BYTES) {
    const size = Buffer.byteLength(bodyJson) + Buffer.byteLength(thread) + Buffer.byteLength(actor) + fixed;
    if (size > MAX_RECORD_BYTES) {
      throw new RecordError(
        "RECORD_TOO_LARGE",
        `record is ${size} bytes; the limit is ${MAX_RECORD_BYTES} (1 MiB) — store large content elsewhere and reference it`,
        413,
      );
    }
  }

  const env: Envelope = { parents, thread, actor, act: act as Act, body: body as JsonObject, clock, data_type, judged_by };
  return { env, bodyJson, clockGiven, claimedId };
}

/** Id and canonical form once the clock is known. Checks an id the client claimed. */
export function sealRecord(p: PreparedRecord): string {
  const id = sha256Hex(hashedJson(p.env, p.bodyJson));
  if (p.claimedId !== undefined && p.claimedId !== id && p.clockGiven) {
    throw new RecordError(
      "ID_MISMATCH",
      `the record's content hashes to ${id}, not the 'id' it carries (${p.claimedId}) — drop 'id' or fix the content`,
    );
  }
  return id;
}
