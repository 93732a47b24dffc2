// Small HTTP helpers shared by the routes: JSON answers, the error envelope, body reading.
import { jsonTextProblem } from "../records/json-text";

const JSON_HEADERS = { "content-type": "application/json" };

export function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: JSON_HEADERS });
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Structured fields added to the envelope (e.g. a permission decision), for clients to render. */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }

  response(): Response {
    return json(this.status, { ...errorBody(this.status, this.code, this.message), ...this.details });
  }
}

export function errorBody(status: number, code: string, message: string) {
  return { object: "error", type: status >= 500 ? "api_error" : "invalid_request_error", code, message };
}

export function errorResponse(status: number, code: string, message: string): Response {
  return json(status, errorBody(status, code, message));
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const EMPTY = new Uint8Array(0);

function tooLarge(code: string, maxBytes: number, seen: number, exact: boolean): ApiError {
  if (maxBytes === 0) return new ApiError(413, "BODY_NOT_ALLOWED", "this route takes no request body — send the request without one");
  const size = exact ? `${seen} bytes` : `more than ${maxBytes} bytes`;
  return new ApiError(413, code, `request body is ${size}; the limit is ${maxBytes} — send less per request`);
}

/**
 * Reads a request body, counting bytes as they stream in and stopping at the first byte past
 * maxBytes (413), so a chunked body without Content-Length is never buffered beyond the limit.
 */
export async function readBody(request: Request, maxBytes: number, tooLargeCode = "REQUEST_TOO_LARGE"): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes) throw tooLarge(tooLargeCode, maxBytes, declared, true);
  // Bun hands a GET no body stream, so a chunked body there is refused on its framing alone.
  if (maxBytes === 0 && request.headers.has("transfer-encoding")) throw tooLarge(tooLargeCode, 0, 0, false);
  try {
    // With a Content-Length (within the limit) Bun delivers exactly that many bytes; the body
    // stream is only touched for a chunked body.
    if (request.headers.has("content-length")) return declared === 0 ? EMPTY : new Uint8Array(await request.arrayBuffer());
    if (!request.body) return EMPTY;
    return await readChunked(request.body, maxBytes, tooLargeCode);
  } catch (err) {
    if (err instanceof ApiError) throw err;
    // The client went away mid-upload: its mistake (or its network's), not the daemon's.
    throw new ApiError(400, "BODY_INCOMPLETE", "the request body ended before it was complete (the client closed the connection mid-upload) — send the request again");
  }
}

async function readChunked(body: ReadableStream<Uint8Array>, maxBytes: number, tooLargeCode: string): Promise<Uint8Array> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      reader.cancel().catch(() => {});
      throw tooLarge(tooLargeCode, maxBytes, total, false);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** Parses a JSON request body, refusing empty bodies, invalid UTF-8 and malformed JSON with 400. */
export function parseJson(bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) throw new ApiError(400, "INVALID_JSON", "request body is empty — send a JSON object");
  let text: string;
  try {
    text = utf8.decode(bytes);
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
