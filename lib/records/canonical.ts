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

/** Canonical JSON of a parsed JSON value. `depth` counts enclosing objects/arrays. */
export function canonicalJson(value: unknown, depth = 0): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
      if (!value.isWellFormed()) throw notUnicode(value);
      return JSON.stringify(value);
    case "boolean":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw new CanonicalError("INVALID_VALUE", "numbers must be finite");
      return JSON.stringify(value);
    case "object":
      break;
    default:
      throw new CanonicalError("INVALID_VALUE", `unsupported JSON value of type ${typeof value}`);
  }
  if (depth >= MAX_BODY_DEPTH) {
    throw new CanonicalError(
      "BODY_TOO_DEEP",
      `body nests deeper than ${MAX_BODY_DEPTH} levels — flatten the body`,
    );
  }
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) out += (i ? "," : "") + canonicalJson(value[i], depth + 1);
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
    out += (first ? "" : ",") + JSON.stringify(key) + ":" + canonicalJson(v, depth + 1);
    first = false;
  }
  return out + "}";
}
