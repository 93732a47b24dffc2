// I-JSON checks over the raw text of a body JSON.parse has already accepted. JSON.parse keeps the
// last of two equal keys and rounds every number to the nearest double, so the value hashed
// would differ from the one sent; RFC 8785 also needs strings without lone surrogates. One pass
// over the text: string contents are skipped with indexOf, and only keys, long integers,
// numbers with a fraction or exponent, and escapes are looked at.
//
// A number is accepted when its value survives the trip through a double (README "HTTP API"):
// an integer within ±(2^53-1), or a number whose decimal value is that of the shortest form of
// the double nearest to it (what RFC 8785 writes): 0.1 and 1e300 pass (1.0 is stored as 1, the
// same value); 9007199254740993.0, 0.10000000000000001, 1e-400 and 1e400 are refused.

export interface JsonTextProblem {
  code: "DUPLICATE_KEY" | "UNSAFE_INTEGER" | "INEXACT_NUMBER" | "LONE_SURROGATE";
  /** What is wrong, naming the value ("holds the integer 9007199254740993, ..."). */
  what: string;
  fix: string;
  /** `request body <what> — <fix>`: the HTTP error message. */
  message: string;
}

function problem(code: JsonTextProblem["code"], what: string, fix: string): JsonTextProblem {
  return { code, what, fix, message: `request body ${what} — ${fix}` };
}

const QUOTE = 34;
const BACKSLASH = 92;
const MAX_SAFE = "9007199254740991";

/** Checks the \u escapes of one string (text[start, end) holds its contents). */
function checkEscapes(text: string, start: number, end: number): JsonTextProblem | null {
  for (let i = text.indexOf("\\", start); i !== -1 && i < end; ) {
    if (text.charCodeAt(i + 1) !== 117 /* u */) {
      i = text.indexOf("\\", i + 2);
      continue;
    }
    const unit = parseInt(text.slice(i + 2, i + 6), 16);
    if (unit >= 0xdc00 && unit <= 0xdfff) return loneSurrogate(text, i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      // A high surrogate must be followed directly by an escaped low one.
      const low = text.charCodeAt(i + 6) === BACKSLASH && text.charCodeAt(i + 7) === 117 ? parseInt(text.slice(i + 8, i + 12), 16) : -1;
      if (!(low >= 0xdc00 && low <= 0xdfff)) return loneSurrogate(text, i);
      i = text.indexOf("\\", i + 12);
      continue;
    }
    i = text.indexOf("\\", i + 6);
  }
  return null;
}

function loneSurrogate(text: string, at: number): JsonTextProblem {
  return problem(
    "LONE_SURROGATE",
    `holds a lone surrogate escape (${text.slice(at, at + 6)}); record ids are computed over valid Unicode`,
    "send a complete surrogate pair or the character itself",
  );
}

// Objects are small as a rule: a linear scan beats hashing until one grows large.
const keySets = new WeakMap<string[], Set<string>>();
function hasKey(keys: string[], key: string): boolean {
  if (keys.length < 32) return keys.includes(key);
  let set = keySets.get(keys);
  if (!set) keySets.set(keys, (set = new Set(keys)));
  else for (let i = set.size; i < keys.length; i++) set.add(keys[i]!);
  return set.has(key);
}

const isDigit = (c: number) => c >= 48 && c <= 57;

/** A JSON number's exact decimal value as sign, significant digits (no leading/trailing zeros) and exponent; "" digits is zero. */
function decimalValue(num: string): { neg: boolean; digits: string; exp: number } {
  const m = /^(-?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(num)!;
  const frac = m[3] ?? "";
  let digits = (m[2] ?? "") + frac;
  let exp = Number(m[4] ?? 0) - frac.length;
  let lead = 0;
  while (lead < digits.length && digits.charCodeAt(lead) === 48) lead++;
  let end = digits.length;
  while (end > lead && digits.charCodeAt(end - 1) === 48) end--;
  exp += digits.length - end;
  digits = digits.slice(lead, end);
  return { neg: m[1] === "-", digits, exp };
}

/** What JSON.parse turns `num` into, when that is another value (null when it is the same). */
function inexact(num: string): string | null {
  const parsed = Number(num);
  if (!Number.isFinite(parsed)) return String(parsed);
  const sent = decimalValue(num);
  const kept = decimalValue(String(parsed));
  if (sent.digits === "" && kept.digits === "") return null; // zero, whatever its sign or spelling
  return sent.neg === kept.neg && sent.digits === kept.digits && sent.exp === kept.exp ? null : String(parsed);
}

/**
 * Returns the first I-JSON problem in `text` (which must be valid JSON), or null: a duplicate
 * key in one object, an integer outside ±(2^53-1), a number a double cannot carry, or a lone
 * surrogate in a string.
 */
export function jsonTextProblem(text: string): JsonTextProblem | null {
  // Per open container: null for an array, else the keys seen so far in that object.
  const stack: (string[] | null)[] = [];
  let top: string[] | null = null;
  let expectKey = false;
  let nextBackslash = text.indexOf("\\");
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // The closing quote is the first one not escaped by an odd run of backslashes.
      let end = text.indexOf('"', i + 1);
      if (nextBackslash !== -1 && nextBackslash < i) nextBackslash = text.indexOf("\\", i);
      const escaped = nextBackslash !== -1 && nextBackslash < end;
      if (escaped) {
        let j = i + 1;
        for (;;) {
          const ch = text.charCodeAt(j);
          if (ch === BACKSLASH) j += 2;
          else if (ch === QUOTE) break;
          else j++;
        }
        end = j;
        const bad = checkEscapes(text, i + 1, end);
        if (bad) return bad;
        nextBackslash = text.indexOf("\\", end);
      }
      if (expectKey && top !== null) {
        const key = escaped ? (JSON.parse(text.slice(i, end + 1)) as string) : text.slice(i + 1, end);
        if (hasKey(top, key)) {
          return problem("DUPLICATE_KEY", `has the key ${JSON.stringify(key)} twice in one object; JSON parsers disagree on which one counts`, "send each key once");
        }
        top.push(key);
        expectKey = false;
      }
      i = end;
    } else if (c === 123 /* { */) {
      stack.push(top);
      top = [];
      expectKey = true;
    } else if (c === 91 /* [ */) {
      stack.push(top);
      top = null;
    } else if (c === 125 /* } */ || c === 93 /* ] */) {
      top = stack.pop() ?? null;
      expectKey = false;
    } else if (c === 44 /* , */) {
      expectKey = top !== null;
    } else if (isDigit(c) || c === 45 /* - */) {
      const digitsStart = c === 45 ? i + 1 : i;
      let j = digitsStart;
      while (isDigit(text.charCodeAt(j))) j++;
      const digits = j - digitsStart;
      let isInteger = true;
      if (text.charCodeAt(j) === 46 /* . */) {
        isInteger = false;
        for (j++; isDigit(text.charCodeAt(j)); ) j++;
      }
      if ((text.charCodeAt(j) | 32) === 101 /* e */) {
        isInteger = false;
        j++;
        if (text.charCodeAt(j) === 43 || text.charCodeAt(j) === 45) j++;
        while (isDigit(text.charCodeAt(j))) j++;
      }
      if (isInteger && digits >= MAX_SAFE.length && (digits > MAX_SAFE.length || text.slice(digitsStart, j) > MAX_SAFE)) {
        return problem("UNSAFE_INTEGER", `holds the integer ${text.slice(i, j)}, beyond ±(2^53-1), which JSON numbers cannot carry exactly`, "send it as a string");
      }
      if (!isInteger) {
        const num = text.slice(i, j);
        const stored = inexact(num);
        if (stored !== null) {
          const would = Number.isFinite(Number(stored)) ? `would be stored as ${stored}` : "is beyond the range of a double";
          return problem("INEXACT_NUMBER", `holds the number ${num.length > 40 ? `${num.slice(0, 40)}...` : num}, which a JSON number (an IEEE 754 double) cannot carry exactly: it ${would}`, "send it as a string, or as the value that is stored");
        }
      }
      i = j - 1;
    }
  }
  return null;
}
