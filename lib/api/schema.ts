// The schemas routes declare (route.ts): TypeBox (the JSON Schema builder Elysia's `t` is made of),
// so one declaration is both the check a request passes (validate.ts) and what GET /openapi.json
// says (openapi.ts). The shapes shared by many routes live here: a record, a page, the error
// envelope. A schema may carry "x-expected", the words an error uses for what the field must be.
import { Type as T, type TLiteral, type TObject, type TProperties, type TSchema, type TUnion } from "@sinclair/typebox";
import { ACTS, DATA_TYPES } from "../records/types";

export { T };
export type { Static, TObject, TSchema } from "@sinclair/typebox";

/** A value or null. */
export const nullable = <S extends TSchema>(s: S) => T.Union([s, T.Null()]);
/** One of these strings (an enum in the document, a union in a generated client). */
export const oneOf = <const V extends readonly string[]>(values: V, opts: { description?: string } = {}): TUnion<TLiteral<V[number]>[]> =>
  T.Union(
    values.map((v) => T.Literal(v)),
    { ...opts, "x-expected": `one of ${values.join(", ")}` },
  ) as TUnion<TLiteral<V[number]>[]>;
/** Any JSON object. */
export const AnyObject = T.Object({}, { additionalProperties: true });
/** Unix seconds. */
export const UnixSecs = T.Integer({ minimum: 0, description: "unix seconds" });

/** Routes that read no query parameters. */
export const NO_QUERY = T.Object({});
/** `true` or `false` in a query string. */
export const QueryFlag = (description: string) => T.Optional(T.Boolean({ description, default: false }));

/** The query parameters of every paged list; `after` is the previous page's next_cursor. */
export const PAGE_QUERY = {
  limit: T.Optional(T.Integer({ minimum: 1, maximum: 1000, default: 100, description: "page size, 1 to 1000 (default 100)" })),
  after: T.Optional(T.String({ pattern: "^[0-9]{0,15}$", description: "next_cursor of the previous page", "x-expected": "a cursor from a previous page's next_cursor" })),
};

/** The page PAGE_QUERY asks for, as numbers for the store. */
export function pageFrom(query: { limit?: number; after?: string }): { limit: number; after: number } {
  return { limit: query.limit ?? 100, after: query.after ? Number(query.after) : 0 };
}

const Did = T.String({ pattern: "^did:[a-z0-9]+:\\S+$", description: "a DID such as did:sync:user:alice", "x-expected": 'a DID string such as "did:sync:user:alice"' });
const RecordId = T.String({ description: "a record id: 64 hex characters, the SHA-256 of its canonical envelope" });

/** What a client sends (records/envelope.ts checks exactly this; it is the check on the ingest routes). */
export const RecordInput = T.Object(
  {
    thread: T.String({ minLength: 1, description: 'the thread, e.g. "th_notes"' }),
    actor: Did,
    act: oneOf(ACTS),
    body: T.Object({}, { additionalProperties: true, description: "any JSON object ({} for none)" }),
    parents: T.Optional(nullable(T.Array(T.String({ minLength: 1 }), { description: "ids of the records this one follows" }))),
    clock: T.Optional(nullable(T.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: "omit it and the daemon assigns max + 1 for (thread, actor)" }))),
    data_type: T.Optional(nullable(oneOf(DATA_TYPES))),
    judged_by: T.Optional(nullable(T.String({ description: "id of the record this one judges" }))),
    id: T.Optional(T.String({ description: "echoed from a record read back; with a clock, it must be the content's id" })),
    object: T.Optional(T.String({ description: "echoed from a record read back; ignored" })),
    sequence: T.Optional(T.Integer({ description: "echoed; ignored" })),
    created_at: T.Optional(T.Integer({ description: "echoed; ignored" })),
    duplicate: T.Optional(T.Boolean({ description: "echoed; ignored" })),
  },
  { $id: "RecordInput", additionalProperties: false, description: "a record; its canonical form is at most 1 MiB (1048576 bytes; 413 RECORD_TOO_LARGE past it)" },
);

/** A stored record as every read answers it (records/wire.ts). */
export const RecordSchema = T.Object(
  {
    object: T.Literal("record"),
    id: RecordId,
    parents: T.Array(T.String()),
    thread: T.String(),
    actor: T.String(),
    act: oneOf(ACTS),
    body: AnyObject,
    clock: T.Integer({ minimum: 0 }),
    data_type: oneOf(DATA_TYPES),
    judged_by: nullable(T.String()),
    sequence: T.Integer({ minimum: 1, description: "store order" }),
    created_at: UnixSecs,
  },
  { $id: "Record" },
);

/** POST /v1/records when the same content is already stored: the stored record, marked. */
export const DuplicateRecord = T.Composite([RecordSchema, T.Object({ duplicate: T.Literal(true) })], { $id: "DuplicateRecord" });

/** The error envelope every refusal is. */
export const ErrorSchema = T.Object(
  {
    object: T.Literal("error"),
    type: oneOf(["invalid_request_error", "api_error"]),
    code: T.String({ description: "UPPER_SNAKE, e.g. AUTH_REQUIRED" }),
    message: T.String({ description: "what went wrong and how to fix it" }),
    permission: T.Optional(T.Object({}, { additionalProperties: true, description: "on PERMISSION_DENIED: actor, resource, rule, priority, reason, route" })),
  },
  { additionalProperties: true },
);

/** `{object: "list", data: [...]}` plus whatever else the list carries. */
export const listOf = <S extends TSchema, P extends TProperties = {}>(item: S, extra?: P) => T.Object({ object: T.Literal("list"), data: T.Array(item), ...(extra ?? ({} as P)) });

/** A page of a cursor-paged list. */
export const pageOf = <S extends TSchema>(item: S) => listOf(item, { has_more: T.Boolean(), next_cursor: nullable(T.String({ description: "pass as ?after= for the next page" })) });

/** The property schemas of an object schema. */
export const propertiesOf = (s: TObject): Record<string, TSchema> => s.properties as Record<string, TSchema>;
