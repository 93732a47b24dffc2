// Shell completion scripts, generated from the command tree itself (citty definitions), so a new
// verb or flag completes without editing a list: every command path with its subcommands and flags.
import type { ArgsDef, CommandDef } from "citty";

type AnyCommand = CommandDef<ArgsDef>;
type Lazy<T> = T | (() => T | Promise<T>);

export interface CommandNode {
  /** "" for spl itself, else "thread records". */
  path: string;
  subcommands: string[];
  /** "--daemon", "-o"... */
  flags: { name: string; description: string }[];
}

async function resolve<T>(v: Lazy<T> | undefined): Promise<T | undefined> {
  return typeof v === "function" ? await (v as () => T | Promise<T>)() : v;
}

/** Walks every verb (loading each one's module) into a flat list of command paths. */
export async function commandTree(root: AnyCommand): Promise<CommandNode[]> {
  const nodes: CommandNode[] = [];
  const walk = async (cmd: AnyCommand, path: string) => {
    const subs = ((await resolve(cmd.subCommands as Lazy<Record<string, Lazy<AnyCommand>>>)) ?? {}) as Record<string, Lazy<AnyCommand>>;
    const args = ((await resolve(cmd.args as Lazy<ArgsDef>)) ?? {}) as ArgsDef;
    const flags: CommandNode["flags"] = [{ name: "--help", description: "Show help" }];
    for (const [name, def] of Object.entries(args)) {
      if (def.type === "positional") continue;
      const description = (def.description ?? "").replace(/\s+/g, " ");
      flags.push({ name: `--${name}`, description });
      for (const alias of [(def as { alias?: string | string[] }).alias ?? []].flat()) flags.push({ name: alias.length === 1 ? `-${alias}` : `--${alias}`, description });
    }
    nodes.push({ path, subcommands: Object.keys(subs), flags });
    for (const [name, sub] of Object.entries(subs)) {
      const def = await resolve(sub);
      if (def) await walk(def, path ? `${path} ${name}` : name);
    }
  };
  await walk(root, "");
  return nodes;
}

const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function words(n: CommandNode): string {
  return [...n.subcommands, ...n.flags.map((f) => f.name)].join(" ");
}

/** bash: the command path is the words typed so far that name subcommands. */
export function bashScript(nodes: CommandNode[]): string {
  const cases = nodes.map((n) => `    ${sq(n.path)}) opts=${sq(words(n))} ;;`).join("\n");
  return `# spl completion for bash: source <(spl completion bash)
_spl() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmdpath="" opts="" w i
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in -*) continue ;; esac
    if _spl_has_sub "$cmdpath" "$w"; then cmdpath="\${cmdpath:+$cmdpath }$w"; fi
  done
  _spl_words "$cmdpath"
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
_spl_words() {
  case "$1" in
${cases}
  esac
}
_spl_has_sub() {
  local opts=""
  _spl_words "$1"
  case " $opts " in *" $2 "*) [[ "$2" != -* ]] ;; *) return 1 ;; esac
}
complete -o default -F _spl spl
`;
}

/** zsh: the same walk, offering subcommands and flags (with descriptions) through _describe. */
export function zshScript(nodes: CommandNode[]): string {
  const cases = nodes
    .map((n) => {
      const items = [...n.subcommands.map((s) => sq(s)), ...n.flags.map((f) => sq(`${f.name.replace(/:/g, "\\:")}:${f.description}`))];
      return `    ${sq(n.path)}) items=(${items.join(" ")}) ;;`;
    })
    .join("\n");
  return `#compdef spl
# spl completion for zsh: source <(spl completion zsh)   (after compinit)
_spl_items() {
  case "$1" in
${cases}
  esac
}
_spl() {
  local cmdpath="" w i
  local -a items
  for ((i = 2; i < CURRENT; i++)); do
    w="\${words[i]}"
    [[ "$w" == -* ]] && continue
    _spl_items "$cmdpath"
    if (( \${items[(Ie)$w]} )); then cmdpath="\${cmdpath:+$cmdpath }$w"; fi
  done
  _spl_items "$cmdpath"
  _describe 'spl' items
}
compdef _spl spl
`;
}

/**
 * fish: the command path typed so far is worked out like bash's (the words that name a
 * subcommand of the path before them), and each `complete` line applies to exactly one path, so
 * `spl fleet status` is offered its own flags, not those of `spl status` or `spl fleet`.
 */
export function fishScript(nodes: CommandNode[]): string {
  const subs = nodes.filter((n) => n.subcommands.length).map((n) => `    case ${sq(n.path)}\n      printf '%s\\n' ${n.subcommands.map(sq).join(" ")}`);
  const lines = [
    "# spl completion for fish: spl completion fish | source",
    "function __spl_subcommands --description 'the subcommands of an spl command path'",
    "  switch $argv[1]",
    ...subs,
    "  end",
    "end",
    "function __spl_path --description 'the spl command path typed so far'",
    // Every `complete` line asks; work it out once per command line.
    "  set -l line (commandline -pc)",
    "  if test \"$line\" = \"$__spl_path_line\"",
    "    echo $__spl_path_value",
    "    return",
    "  end",
    "  set -l path ''",
    "  for w in (commandline -opc)[2..-1]",
    "    string match -q -- '-*' $w; and continue",
    "    contains -- $w (__spl_subcommands $path); and set path (string trim -- \"$path $w\")",
    "  end",
    "  set -g __spl_path_line $line",
    "  set -g __spl_path_value $path",
    "  echo $path",
    "end",
    "complete -c spl -f",
  ];
  for (const n of nodes) {
    const at = `"test (__spl_path) = '${n.path}'"`; // paths are [a-z-] words
    for (const sub of n.subcommands) lines.push(`complete -c spl -n ${at} -a ${sq(sub)}`);
    for (const f of n.flags) {
      const opt = f.name.startsWith("--") ? `-l ${f.name.slice(2)}` : `-s ${f.name.slice(1)}`;
      lines.push(`complete -c spl -n ${at} ${opt}${f.description ? ` -d ${sq(f.description)}` : ""}`);
    }
  }
  return lines.join("\n") + "\n";
}

export const SHELLS = { bash: bashScript, zsh: zshScript, fish: fishScript } as const;
