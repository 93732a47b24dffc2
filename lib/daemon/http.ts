// Small HTTP helpers shared by the routes: JSON answers, the error envelope, body reading.
import { jsonTextProblem } from "../records/json-text";
import { decimalParam } from "./query";

const JSON_HEADERS = { "content-type": "application/json" };

export function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: JSON_HEADERS });
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function errorBody(status: number, code: string, message: string) {
  return { object: "error", type: status >= 500 ? "api_error" : "invalid_request_error", code, message };
}

export function errorResponse(status: number, code: string, message: string): Response {
  return json(status, errorBody(status, code, message));
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Reads a JSON request body, refusing oversize, invalid UTF-8 and malformed JSON with 4xx. */
export async function readJson(request: Request, maxBytes: number, tooLargeCode = "REQUEST_TOO_LARGE"): Promise<unknown> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  const tooLarge = (n: number) =>
    new ApiError(413, tooLargeCode, `request body is ${n} bytes; the limit is ${maxBytes} — send less per request`);
  if (declared > maxBytes) throw tooLarge(declared);
  const buf = await request.arrayBuffer();
  if (buf.byteLength > maxBytes) throw tooLarge(buf.byteLength);
  if (buf.byteLength === 0) throw new ApiError(400, "INVALID_JSON", "request body is empty — send a JSON object");
  let text: string;
  try {
    text = utf8.decode(buf);
  } catch {
    throw new ApiError(400, "INVALID_UTF8", "request body is not valid UTF-8 — encode the JSON as UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const why = err instanceof RangeError ? "it nests too deeply" : (err as Error).message;
    throw new ApiError(400, "INVALID_JSON", `request body is not valid JSON: ${why}`);
  }
  const problem = jsonTextProblem(text);
  if (problem) throw new ApiError(400, problem.code, problem.message);
  return value;
}

/** Parses limit/after query parameters (SPEC 6: limit default 100, max 1000; after = cursor). */
export function pageParams(query: Record<string, string | undefined>): { limit: number; after: number } {
  const limit = query.limit === undefined ? 100 : decimalParam(query.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new ApiError(400, "INVALID_QUERY", "'limit' must be an integer from 1 to 1000");
  }
  const after = query.after === undefined || query.after === "" ? 0 : decimalParam(query.after);
  if (!Number.isSafeInteger(after) || after < 0) {
    throw new ApiError(400, "INVALID_QUERY", "'after' must be a cursor from a previous page's next_cursor");
  }
  return { limit, after };
}
