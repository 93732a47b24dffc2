// Query strings are read strictly: a parameter given twice is refused (frameworks silently keep
// one of them), and numbers are plain decimal digits (Number() would take 0x10, 1e3, " 5").

/** The first parameter named more than once in `url`'s query string, or null. */
export function repeatedQueryParam(url: string): string | null {
  const q = url.indexOf("?");
  if (q < 0 || url.indexOf("&", q) < 0) return null;
  const seen = new Set<string>();
  for (const key of new URLSearchParams(url.slice(q + 1)).keys()) {
    if (seen.has(key)) return key;
    seen.add(key);
  }
  return null;
}

/** A non-negative decimal integer, or NaN for anything else (hex, exponents, signs, spaces). */
export function decimalParam(value: string): number {
  return /^[0-9]{1,16}$/.test(value) ? Number(value) : NaN;
}
