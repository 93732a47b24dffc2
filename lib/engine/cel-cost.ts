// Bounds the work one CEL evaluation may do. Without loops CEL is linear in the expression, so
// the cost that matters is comprehension fan-out: `L.all(a, L.all(b, ...))` multiplies. Two
// guards use the same unit, "elements a comprehension visits":
//  - estimateCost() at check time, from the AST (literal lists count their length, any other
//    list UNKNOWN_LIST_SIZE), so a rule that could blow up is refused before it is stored;
//  - instrument() + withBudget() at run time: every comprehension is charged the size of what
//    it is about to walk before it starts, and the evaluation stops once the budget is spent.

import { CelCostError } from "./cel-values";

/** Elements all comprehensions of one evaluation may visit together. */
export const MAX_EVALUATION_STEPS = 100_000;
/** What the estimate assumes for a list it cannot see (bound data, function results). */
export const UNKNOWN_LIST_SIZE = 100;

// cel-js AST nodes, as far as this module relies on them.
export interface AstNode {
  op: string;
  args: unknown;
  meta: { alternate?: AstNode };
  start?: number;
  handle?: (...args: any[]) => unknown;
}
interface ComprehensionArgs {
  iterable: AstNode;
  init: AstNode;
  step: AstNode;
}

function isNode(value: unknown): value is AstNode {
  return !!value && typeof value === "object" && typeof (value as AstNode).op === "string" && "meta" in (value as object);
}

/** Child nodes of a node, looking through macro expansions (a `.all()` call is its comprehension). */
function children(node: AstNode): AstNode[] {
  if (node.meta.alternate) return [node.meta.alternate];
  if (node.op === "comprehension") {
    const a = node.args as ComprehensionArgs;
    return [a.iterable, a.init, a.step];
  }
  const out: AstNode[] = [];
  const collect = (v: unknown) => {
    if (isNode(v)) out.push(v);
    else if (Array.isArray(v)) v.forEach(collect);
  };
  collect(node.args);
  return out;
}

function literalSize(node: AstNode): number {
  return (node.op === "list" || node.op === "map") && Array.isArray(node.args) ? node.args.length : UNKNOWN_LIST_SIZE;
}

/** Upper bound of the elements the expression's comprehensions visit in one evaluation. */
export function estimateCost(root: unknown): number {
  const cost = (node: AstNode): number => {
    if (node.op === "comprehension" && !node.meta.alternate) {
      const a = node.args as ComprehensionArgs;
      return cost(a.iterable) + cost(a.init) + literalSize(a.iterable) * (1 + cost(a.step));
    }
    let sum = 0;
    for (const child of children(node)) sum += cost(child);
    return sum;
  };
  return isNode(root) ? cost(root) : 0;
}

export function staticCostProblem(root: unknown): string | undefined {
  const estimate = estimateCost(root);
  if (estimate <= MAX_EVALUATION_STEPS) return undefined;
  return (
    `expression is too costly: its comprehensions may visit up to ${Math.round(estimate)} elements per evaluation ` +
    `(limit ${MAX_EVALUATION_STEPS}; a list whose size is unknown counts as ${UNKNOWN_LIST_SIZE}) — nest fewer comprehensions or walk shorter lists`
  );
}

// ---------------------------------------------------------------------------
// Run time

interface Budget {
  left: number;
  exceeded: boolean;
}

/** The budget of the evaluation in progress (cel-js handlers get no context of ours). */
let active: Budget | null = null;

function sizeOf(items: unknown): number {
  if (Array.isArray(items)) return items.length;
  if (items instanceof Map || items instanceof Set) return items.size;
  if (items && typeof items === "object") return Object.keys(items).length;
  return 1;
}

function charge(items: unknown): void {
  chargeSteps(sizeOf(items));
}

/** Charges work that is not a comprehension (a regex match: cel-regex.ts) to the running budget. */
export function chargeSteps(steps: number): void {
  const budget = active;
  if (!budget) return;
  budget.left -= steps;
  if (budget.left < 0) {
    budget.exceeded = true;
    throw runtimeCostError();
  }
}

function runtimeCostError(): CelCostError {
  return new CelCostError(
    `expression is too costly: its comprehensions visited more than ${MAX_EVALUATION_STEPS} elements (a regex match counts one per 64 characters it reads) — nest fewer comprehensions, walk shorter lists or match shorter strings`,
  );
}

/** Calls visit on every node of a type-checked AST, looking through macro expansions. */
export function walkAst(root: unknown, visit: (node: AstNode) => void): void {
  const seen = new Set<AstNode>();
  const go = (node: AstNode) => {
    if (seen.has(node)) return;
    seen.add(node);
    visit(node);
    children(node).forEach(go);
  };
  if (isNode(root)) go(root);
}

const instrumented = new WeakSet<object>();

/** Makes every comprehension of a type-checked AST charge the running budget before it iterates. */
export function instrument(root: unknown): void {
  const visit = (node: AstNode) => {
    if (instrumented.has(node)) return;
    instrumented.add(node);
    if (node.op === "comprehension" && typeof node.handle === "function") {
      const handle = node.handle;
      node.handle = (items, args, ev, ctx) => {
        charge(items);
        return handle(items, args, ev, ctx);
      };
    }
    children(node).forEach(visit);
  };
  if (isNode(root)) visit(root);
}

/**
 * Runs `evaluate` under a fresh budget. CEL absorbs errors in `||`, `&&` and quantifiers, so the
 * budget remembers that it ran out and the whole evaluation fails even if a caught error let it finish.
 */
export function withBudget<T>(evaluate: () => T): T {
  const previous = active;
  const budget: Budget = { left: MAX_EVALUATION_STEPS, exceeded: false };
  active = budget;
  try {
    const result = evaluate();
    if (budget.exceeded) throw runtimeCostError();
    return result;
  } catch (err) {
    if (budget.exceeded && !(err instanceof CelCostError)) throw runtimeCostError();
    throw err;
  } finally {
    active = previous;
  }
}
