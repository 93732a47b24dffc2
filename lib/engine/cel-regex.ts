// CEL's `matches()` with RE2 semantics, as CEL specifies (README "Engine"): re2js, a pure
// JavaScript port of RE2, matches in time linear in the input whatever the pattern, where the
// JavaScript engine's backtracking can take seconds per string (`^(\w+\s?)*$`) or give up and
// answer "no match" (`(a+)+$|!`), which would let a record past a deny rule.
//  - A literal pattern is compiled when the rule is checked: one RE2 cannot run (backreferences,
//    lookaround) is refused with the column, before the rule is stored.
//  - A pattern that only exists at run time (read from the record) is compiled then, through a
//    small cache; an invalid one is an evaluation error (a permission rule then denies).
//  - Matching is charged to the evaluation's budget (cel-cost.ts) by input length, so one rule
//    cannot match megabytes many times over.
import type { RE2JS } from "re2js";
import { chargeSteps, walkAst, type AstNode } from "./cel-cost";
import { LruMap } from "./lru";

/** Longest pattern matches() compiles; compiling costs about a millisecond per 200 characters. */
export const MAX_PATTERN_CHARS = 4096;
/** Input characters one budget step pays for (the budget is 100 000 steps: ~6 MB matched). */
const CHARS_PER_STEP = 64;
/** A compile is charged as this many input characters per pattern character. */
const COMPILE_WEIGHT = 8;

type Re2Module = typeof import("re2js");
let re2Module: Re2Module | undefined;
// Lazy, like cel-js itself: commands that never evaluate CEL do not load it.
const re2js = () => (re2Module ??= require("re2js") as Re2Module);

const compiled = new LruMap<string, RE2JS>(256);

/** Why RE2 cannot run `pattern` (one line, with the fix), or undefined when it can. */
function compileError(pattern: string): { error: string } | { re: RE2JS } {
  if (pattern.length > MAX_PATTERN_CHARS) {
    return { error: `regular expression is ${pattern.length} characters long; matches() takes at most ${MAX_PATTERN_CHARS}` };
  }
  try {
    return { re: re2js().RE2JS.compile(pattern) };
  } catch (err) {
    const why = String((err as Error)?.message ?? err).replace(/^error parsing regexp: /, "");
    return {
      error: `regular expression ${JSON.stringify(pattern)} is not RE2 syntax: ${why} — matches() runs RE2, which matches in linear time and has no backreferences or lookaround; rewrite the pattern without them`,
    };
  }
}

/** `s.matches(pattern)`: whether pattern matches anywhere in s (RE2, unanchored). */
export function re2Matches(s: string, pattern: string): boolean {
  let re = compiled.get(pattern);
  if (!re) {
    chargeSteps(Math.ceil((pattern.length * COMPILE_WEIGHT) / CHARS_PER_STEP));
    const r = compileError(pattern);
    if ("error" in r) throw Object.assign(new Error(r.error), { code: "invalid_regular_expression" });
    compiled.set(pattern, (re = r.re));
  }
  chargeSteps(1 + Math.floor(s.length / CHARS_PER_STEP));
  return re.test(s);
}

function isMatchesCall(node: AstNode): node is AstNode & { args: [string, AstNode, AstNode[]] } {
  if (node.op !== "rcall" || !Array.isArray(node.args)) return false;
  const [name, , args] = node.args as unknown[];
  return name === "matches" && Array.isArray(args) && args.length === 1;
}

/**
 * Makes every `x.matches(p)` of a type-checked AST match with RE2, and checks the literal
 * patterns now. Returns the first pattern RE2 cannot run, with its offset in the expression.
 */
export function useRe2(root: unknown): { error: string; start?: number } | undefined {
  let problem: { error: string; start?: number } | undefined;
  walkAst(root, (node) => {
    if (!isMatchesCall(node)) return;
    const pattern = node.args[2][0]!;
    if (pattern.op === "value" && typeof pattern.args === "string") {
      const r = compileError(pattern.args);
      if ("error" in r) problem ??= { error: r.error, start: pattern.start };
      else compiled.set(pattern.args, r.re);
    }
    // The handler cel-js chose runs for anything but (string, string) (its own type errors).
    const original = node.handle!;
    node.handle = (values: unknown[], ev: unknown, ast: unknown) =>
      typeof values[0] === "string" && typeof values[1] === "string" ? re2Matches(values[0], values[1]) : original(values, ev, ast);
  });
  return problem;
}
