// Requests checked against the schemas their route declares (route.ts, schema.ts): the query
// string converted to the declared types (numbers are plain decimal digits, flags true/false,
// defaults filled in), the JSON body parsed and checked. A value that does not fit is a 400 with
// the error envelope naming the field and what it must be; the handler then holds typed values.
// Compiled once per route when the app is built.
import { Kind, OptionalKind, type TObject, type TSchema } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { ValueErrorType, type ValueError } from "@sinclair/typebox/errors";
import { ApiError, parseJson } from "./http";
import { decimalParam } from "./query";

type Raw = Record<string, string | undefined>;

const EMPTY: Readonly<Record<string, never>> = Object.freeze({});

/** What `schema` must hold, in words ("an integer from 1 to 1000", "one of a, b"). */
export function expected(s: TSchema): string {
  if (typeof s["x-expected"] === "string") return s["x-expected"];
  switch (s[Kind]) {
    case "Integer":
    case "Number": {
      const what = s[Kind] === "Integer" ? "an integer" : "a number";
      if (s.minimum !== undefined && s.maximum !== undefined) return `${what} from ${s.minimum} to ${s.maximum}`;
      if (s.minimum !== undefined) return `${what} of at least ${s.minimum}`;
      return what;
    }
    case "Boolean":
      return "true or false";
    case "String":
      if (s.maxLength !== undefined) return `a string of at most ${s.maxLength} characters`;
      return s.minLength ? "a non-empty string" : "a string";
    case "Literal":
      return JSON.stringify(s.const);
    case "Union": {
      const parts = (s.anyOf as TSchema[]).filter((x) => x[Kind] !== "Null");
      const orNull = parts.length < s.anyOf.length ? " or null" : "";
      if (parts.every((x) => x[Kind] === "Literal")) return `one of ${parts.map((x) => x.const).join(", ")}${orNull}`;
      return parts.map(expected).join(" or ") + orNull;
    }
    case "Array":
      return `a list of ${expected(s.items)}${s.minItems ? " (at least one)" : ""}`;
    case "Object":
      return "a JSON object";
    default:
      return "valid";
  }
}

/** The 400 for the first error: `'field' must be …` (the top-level field an error lies in). */
function refusal(code: string, root: TObject | TSchema, e: ValueError, where: string): ApiError {
  const name = e.path.split("/")[1];
  if (name === undefined || name === "") return new ApiError(400, code, `${where} must be ${expected(root)}`);
  const field = (root as TObject).properties?.[name];
  if (e.type === ValueErrorType.ObjectAdditionalProperties || !field) {
    const known = Object.keys((root as TObject).properties ?? {});
    return new ApiError(400, code, `unknown field '${name}' — ${where} takes ${known.join(", ")}`);
  }
  if (e.type === ValueErrorType.ObjectRequiredProperty) return new ApiError(400, code, `'${name}' is required: ${expected(field)}`);
  return new ApiError(400, code, `'${name}' must be ${expected(field)}`);
}

/**
 * The query checker of a route: every declared parameter converted and checked, defaults filled.
 * Parameters it does not declare are ignored (a cache-buster must not break a client).
 */
export function queryChecker(schema: TObject): (raw: Raw) => Record<string, unknown> {
  const props = Object.entries(schema.properties as Record<string, TSchema>);
  if (!props.length) return () => EMPTY;
  const check = TypeCompiler.Compile(schema);
  const convert = (s: TSchema, v: string): unknown => {
    if (s[Kind] === "Integer" || s[Kind] === "Number") return decimalParam(v);
    if (s[Kind] === "Boolean") return v === "true" ? true : v === "false" ? false : v;
    return v;
  };
  return (raw) => {
    const out: Record<string, unknown> = {};
    for (const [name, s] of props) {
      const v = raw[name];
      if (v !== undefined) out[name] = convert(s, v);
      else if (s.default !== undefined) out[name] = s.default;
    }
    if (!check.Check(out)) {
      const e = check.Errors(out).First()!;
      const name = e.path.split("/")[1] ?? "";
      const given = raw[name];
      throw new ApiError(400, "INVALID_QUERY", `'${name}' must be ${expected(schema.properties[name] as TSchema)}${given === undefined ? "" : `, got ${JSON.stringify(given.slice(0, 40))}`}`);
    }
    return out;
  };
}

/** The body checker of a route: JSON parsed (http.ts parseJson), then checked against `schema`. */
export function bodyChecker(schema: TSchema, opts: { optional?: boolean } = {}): (bytes: Uint8Array) => unknown {
  const check = TypeCompiler.Compile(schema);
  return (bytes) => {
    const value = opts.optional && bytes.byteLength === 0 ? {} : parseJson(bytes);
    if (!check.Check(value)) throw refusal("INVALID_REQUEST", schema, check.Errors(value).First()!, "the request body");
    return value;
  };
}

/** Whether a property schema is optional (TypeBox marks it with a symbol). */
export const isOptional = (s: TSchema) => s[OptionalKind] === "Optional";
