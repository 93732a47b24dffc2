// A permission rule the daemon proposes (a pre-flight's fix, a denial's allow rule) as the
// `spl config add-permission-rule` command an operator can paste.
import type { RuleDraft } from "../engine/permissions";

/** POSIX single-quoting, only when needed. */
export function shellQuote(s: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function permissionRuleCommand(rule: RuleDraft): string {
  return ["spl config add-permission-rule", "--name", shellQuote(rule.name), `--action ${rule.action}`, "--priority", String(rule.priority), "--expression", shellQuote(rule.expression)].join(" ");
}
