// Record ingest and reads: POST /v1/records, POST /v1/records/batch, GET /v1/records[/:id].
import { ACTS } from "../../records/types";
import { MAX_RECORD_BYTES, prepareRecord, type PreparedRecord, RecordError } from "../../records/envelope";
import { toWire } from "../../records/wire";
import type { DaemonState } from "../state";
import { ApiError, errorBody, json, parseJson } from "../../api/http";
import type { ItemResult } from "../../store/ingest-queue";
import { route } from "../../api/route";
import { DuplicateRecord, ErrorSchema, NO_QUERY, PAGE_QUERY, RecordInput, RecordSchema, T, nullable, oneOf, pageFrom, pageOf } from "../../api/schema";

export const MAX_BATCH = 1000;
// Room for JSON whitespace and escapes around a record at the size limit.
const MAX_SINGLE_BODY = MAX_RECORD_BYTES * 2;
export const MAX_BATCH_BODY = 64 * 1024 * 1024;

function prepareOrThrow(input: unknown): PreparedRecord {
  try {
    return prepareRecord(input);
  } catch (err) {
    if (err instanceof RecordError) throw new ApiError(err.status, err.code, err.message);
    throw err;
  }
}

function logIngest(state: DaemonState, results: ItemResult[]) {
  if (!state.log.enabled("info")) return;
  for (const r of results) {
    if (r.status === "created") {
      state.log.info("record ingested", { actor: r.record.actor, thread: r.record.thread, record: r.record.id, act: r.record.act });
    }
  }
}

export function recordRoutes(state: DaemonState) {
  // One line per record: spl.log only, unless [log] records_to_stderr (lib/log.ts).
  const log = state.log.child("spl::ingest", { perRecord: true });
  const ingestLog = { ...state, log };
  return [
    route(
      {
        method: "POST",
        path: "/v1/records",
        cls: "record_write",
        hot: true,
        maxBody: MAX_SINGLE_BODY,
        tooLargeCode: "RECORD_TOO_LARGE",
        rulesPerRecord: true,
        summary: "Write one record",
        query: NO_QUERY,
        body: RecordInput,
        bodyCheckedBy: "records/envelope.ts prepareRecord (INVALID_RECORD, INVALID_FIELD, UNKNOWN_FIELD naming the field)",
        answers: {
          201: { description: "the record was stored", schema: RecordSchema },
          200: { description: "the same content was already stored: that record, with duplicate: true; nothing was written", schema: DuplicateRecord },
        },
        errors: {
          403: "EMERGENCY_STOP or NAMESPACE_FROZEN (the kill switch), RESERVED_THREAD, ACTOR_MISMATCH, a refused task transition",
          409: "CLOCK_CONFLICT: another record holds this (thread, actor, clock) — leave clock out and the daemon assigns the next one; ID_MISMATCH is 400",
          413: `RECORD_TOO_LARGE: the record is over ${MAX_RECORD_BYTES} bytes (1 MiB) in canonical form, or the request body over ${MAX_SINGLE_BODY} bytes`,
        },
      },
      async ({ body, as }) => {
        const prepared = prepareOrThrow(parseJson(body));
        const result = (await state.ingest.submit([prepared], as))[0]!;
        logIngest(ingestLog, [result]);
        if (result.status === "error") throw new ApiError(result.error.status, result.error.code, result.error.message);
        if (result.status === "duplicate") return json(200, { ...toWire(result.record), duplicate: true });
        return json(201, toWire(result.record));
      },
    ),
    route(
      {
        method: "POST",
        path: "/v1/records/batch",
        cls: "record_write",
        hot: true,
        maxBody: MAX_BATCH_BODY,
        rulesPerRecord: true,
        summary: `Write up to ${MAX_BATCH} records in one transaction`,
        query: NO_QUERY,
        body: T.Object({ records: T.Array(RecordInput, { maxItems: MAX_BATCH }) }, { description: `{"records": [record, ...]}, at most ${MAX_BATCH} records` }),
        bodyCheckedBy: "records/envelope.ts prepareRecord, per record (a record that fails is an error item; INVALID_BATCH for the wrapper)",
        answers: { 200: { description: "per-record status, in the order sent (a record that is not valid is an error item; the others are still written)", schema: BatchAnswer } },
        errors: {
          403: "a write check refused a record (RESERVED_THREAD, ACTOR_MISMATCH, EMERGENCY_STOP, ...): the whole call is answered with that refusal and nothing of the batch is written",
          413: `BATCH_TOO_LARGE: more than ${MAX_BATCH} records`,
        },
      },
      async ({ body, as }) => {
        const input = parseJson(body) as { records?: unknown };
        if (!input || typeof input !== "object" || !Array.isArray(input.records)) {
          throw new ApiError(400, "INVALID_BATCH", 'a batch is {"records": [ ...records ]}');
        }
        if (input.records.length > MAX_BATCH) {
          throw new ApiError(413, "BATCH_TOO_LARGE", `a batch holds at most ${MAX_BATCH} records; got ${input.records.length} — split it`);
        }
        const answers: unknown[] = new Array(input.records.length);
        const valid: PreparedRecord[] = [];
        const slots: number[] = [];
        input.records.forEach((raw, i) => {
          try {
            valid.push(prepareRecord(raw));
            slots.push(i);
          } catch (err) {
            if (!(err instanceof RecordError)) throw err;
            answers[i] = { id: null, status: "error", error: errorBody(err.status, err.code, err.message) };
          }
        });
        // One submission: any refusal refuses the whole batch and writes none of it.
        const results = valid.length ? await state.ingest.submit(valid, as) : [];
        logIngest(ingestLog, results);
        results.forEach((r, j) => {
          answers[slots[j]!] = r.status === "error" ? { id: null, status: "error", error: errorBody(r.error.status, r.error.code, r.error.message) } : { id: r.record.id, status: r.status };
        });
        return json(200, { object: "list", data: answers });
      },
    ),
    route(
      {
        method: "GET",
        path: "/v1/records/:id",
        cls: "record_read",
        summary: "One record by id",
        query: NO_QUERY,
        answers: { 200: { description: "the record", schema: RecordSchema } },
        errors: { 404: "RECORD_NOT_FOUND" },
      },
      ({ params, caller }) => {
        const record = state.store.get(params.id!);
        if (!record) throw new ApiError(404, "RECORD_NOT_FOUND", `no record with id ${params.id}`);
        state.gate.checkRead(caller, record.thread);
        return json(200, toWire(record));
      },
    ),
    route(
      {
        method: "GET",
        path: "/v1/records",
        cls: "record_read",
        summary: "A page of records in store order",
        query: T.Object({
          thread: T.Optional(T.String({ description: "only this thread" })),
          actor: T.Optional(T.String({ description: "only this actor" })),
          act: T.Optional(oneOf(ACTS, { description: "only this act" })),
          ...PAGE_QUERY,
        }),
        answers: { 200: { description: "a page of records", schema: pageOf(RecordSchema) } },
      },
      ({ query, caller }) => {
        const { limit, after } = pageFrom(query);
        const { thread, actor, act } = query;
        if (thread !== undefined) state.gate.checkRead(caller, thread);
        const page = state.store.list({ thread, actor, act, limit, after, exceptThreads: thread === undefined ? state.gate.unreadable(caller) : undefined });
        return json(200, { object: "list", data: page.data.map(toWire), has_more: page.has_more, next_cursor: page.next_cursor });
      },
    ),
  ];
}

const BatchAnswer = T.Object({
  object: T.Literal("list"),
  data: T.Array(
    T.Object({
      id: nullable(T.String({ description: "the record's id; null when it was refused" })),
      status: oneOf(["created", "duplicate", "error"]),
      error: T.Optional(ErrorSchema),
    }),
  ),
});
