// RFC 8785 (JCS) canonical JSON: keys sorted by UTF-16 code units at every depth, no whitespace,
// ECMAScript number formatting and JSON.stringify string escaping (which is what JCS specifies).

export const MAX_BODY_DEPTH = 64;

export class CanonicalError extends Error {
  constructor(
    readonly code: "BODY_TOO_DEEP" | "INVALID_VALUE",
    message: string,
  ) {
    super(message);
  }
}

// RFC 8785 hashes I-JSON, whose strings are valid Unicode: a lone surrogate has no canonical form.
const notUnicode = (s: string) =>
  new CanonicalError("INVALID_VALUE", `the string ${JSON.stringify(s.slice(0, 40))} holds a lone surrogate — send valid Unicode text`);

/**
 * Canonical JSON of a parsed JSON value. `depth` counts enclosing objects/arrays.
 *
 * The value is copied with its keys in canonical order and handed to JSON.stringify once: half
 * the cost of building the text piece by piece (bench/README.md, issue 29), and the same text,
 * since JCS escapes strings and formats numbers as JSON.stringify does. An object with a key that
 * looks like an array index cannot keep its keys in that order (JavaScript lists such keys first,
 * in numeric order), so a value holding one is built piece by piece instead. The value is JSON
 * data (parsed, or built by the daemon): getters and proxies would be read twice on that path.
 */
export function canonicalJson(value: unknown, depth = 0): string {
  const sorted = sortedCopy(value, depth);
  return sorted === INDEX_KEY ? pieceByPiece(value, depth) : JSON.stringify(sorted);
}

const INDEX_KEY = Symbol("an array-index key");

/** What every JSON value is checked for, on either path; the value itself when it is a leaf. */
function leaf(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case "string":
      if (!value.isWellFormed()) throw notUnicode(value);
      return value;
    case "boolean":
      return value;
    case "number":
      if (!Number.isFinite(value)) throw new CanonicalError("INVALID_VALUE", "numbers must be finite");
      return value;
    case "object":
      if (value === null) return null;
      if (depth >= MAX_BODY_DEPTH) {
        throw new CanonicalError(
          "BODY_TOO_DEEP",
          `body nests deeper than ${MAX_BODY_DEPTH} levels — flatten the body`,
        );
      }
      return undefined; // a container: the caller walks it
    default:
      throw new CanonicalError("INVALID_VALUE", `unsupported JSON value of type ${typeof value}`);
  }
}

/** A copy with every object's keys in UTF-16 order (null-prototype objects: "__proto__" stays a key), or INDEX_KEY. */
function sortedCopy(value: unknown, depth: number): unknown {
  const l = leaf(value, depth);
  if (l !== undefined) return l;
  if (Array.isArray(value)) {
    const out = new Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const v = sortedCopy(value[i], depth + 1);
      if (v === INDEX_KEY) return INDEX_KEY;
      out[i] = v;
    }
    return out;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  const out: Record<string, unknown> = Object.create(null);
  for (const key of keys) {
    const v = obj[key];
    if (v === undefined) continue;
    if (!key.isWellFormed()) throw notUnicode(key);
    const c = key.charCodeAt(0);
    if (c >= 48 && c <= 57) return INDEX_KEY; // "0".."9…": maybe an array index (see above)
    const copy = sortedCopy(v, depth + 1);
    if (copy === INDEX_KEY) return INDEX_KEY;
    out[key] = copy;
  }
  return out;
}

/** The same text, built piece by piece: for values holding keys that look like array indexes. */
function pieceByPiece(value: unknown, depth: number): string {
  const l = leaf(value, depth);
  if (l !== undefined) return l === null ? "null" : JSON.stringify(l);
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) out += (i ? "," : "") + pieceByPiece(value[i], depth + 1);
    return out + "]";
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = "{";
  let first = true;
  for (const key of keys) {
    const v = obj[key];
    if (v === undefined) continue;
    if (!key.isWellFormed()) throw notUnicode(key);
    out += (first ? "" : ",") + JSON.stringify(key) + ":" + pieceByPiece(v, depth + 1);
    first = false;
  }
  return out + "}";
}
