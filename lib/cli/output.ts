// Terminal output for the CLI: JSON or human tables, and quiet exits on a closed pipe
// (`spl thread records X | head -1`).
import { UsageError } from "../errors";

export const outputArgs = {
  output: { type: "string", alias: "o", description: "Output format: json", valueHint: "json" },
  json: { type: "boolean", description: "Same as -o json" },
} as const;

export function wantsJson(args: { output?: string; json?: boolean }): boolean {
  if (args.output !== undefined && args.output !== "json" && args.output !== "text") {
    throw new UsageError(`unknown output format '${args.output}'`, "use -o json (or leave it out for text)");
  }
  return args.json === true || args.output === "json";
}

let pipeClosed = false;
function onPipeError(err: NodeJS.ErrnoException) {
  if (err.code === "EPIPE") {
    pipeClosed = true;
    process.exit(0);
  }
  throw err;
}
process.stdout.on?.("error", onPipeError);

export function out(text: string): void {
  if (pipeClosed) return;
  try {
    process.stdout.write(text.endsWith("\n") ? text : text + "\n");
  } catch (err) {
    onPipeError(err as NodeJS.ErrnoException);
  }
}

export function printJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

/** Left-aligned columns, two spaces apart. */
export function table(header: string[], rows: (string | number)[][]): string {
  const all = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n");
}

/** "1 copy", "3 copies". */
export const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

export function formatDuration(secs: number): string {
  const d = Math.floor(secs / 86400);
  const h = Math.floor((secs % 86400) / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const s = secs % 60;
  if (d) return `${d}d ${h}h ${m}m`;
  if (h) return `${h}h ${m}m ${s}s`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}
