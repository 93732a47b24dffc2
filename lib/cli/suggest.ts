// "did you mean 'status'?" for a mistyped command or option: the closest known name by edit
// distance, when it is close enough to be the likely intent.

function editDistance(a: string, b: string): number {
  // Damerau (optimal string alignment): a swap of two neighbours counts as one edit.
  let before: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const swap = i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1] ? before[j - 2]! + 1 : Infinity;
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1), swap);
    }
    [before, prev] = [prev, row];
  }
  return prev[b.length]!;
}

/** The candidate nearest to `typed`, or undefined when none is within a third of its length (at least 2). */
export function closest(typed: string, candidates: Iterable<string>): string | undefined {
  const limit = Math.max(2, Math.floor(typed.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(typed.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return bestDistance <= limit ? best : undefined;
}

/** The fix half of a usage error: the suggestion, if any, then where the help is. */
export function suggestion(typed: string, candidates: Iterable<string>, helpPath: string): string {
  const near = closest(typed, candidates);
  return near ? `did you mean '${near}'? (see '${helpPath} --help')` : `see '${helpPath} --help'`;
}
