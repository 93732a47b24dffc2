// spl completion bash|zsh|fish (issue 16, item 6), generated from the command tree of the
// compiled binary; bash completion is exercised in a real bash.
import { describe, expect, test } from "bun:test";
import { Instance } from "./harness";

const inst = new Instance();

/** What bash's completion function offers for the words typed so far (the last one partial). */
async function complete(script: string, words: string[]): Promise<string[]> {
  const quoted = words.map((w) => `'${w}'`).join(" ");
  const program = `${script}\nCOMP_WORDS=(spl ${quoted}); COMP_CWORD=${words.length}; _spl; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = Bun.spawnSync(["bash", "--norc", "--noprofile", "-c", program], { stdout: "pipe", stderr: "pipe" });
  expect(r.stderr.toString()).toBe("");
  return r.stdout.toString().split("\n").filter(Boolean);
}

describe("spl completion", () => {
  test("bash: verbs, subcommands and flags of the command typed so far", async () => {
    const r = await inst.spl(["completion", "bash"]);
    expect(r.code).toBe(0);
    expect(await complete(r.stdout, ["thr"])).toEqual(["thread"]);
    expect(await complete(r.stdout, [""])).toEqual(expect.arrayContaining(["serve", "status", "task", "dispatch", "completion"]));
    expect(await complete(r.stdout, ["thread", ""])).toEqual(expect.arrayContaining(["list", "records", "state"]));
    expect(await complete(r.stdout, ["serve", "--d"])).toEqual(["--daemon"]);
    expect(await complete(r.stdout, ["thread", "records", "th_x", "--f"])).toEqual(["--full"]);
    expect(await complete(r.stdout, ["task", "st"])).toEqual(["start"]);
    expect(await complete(r.stdout, ["status", "-"])).toEqual(expect.arrayContaining(["--output", "-o", "--json", "--help"]));
  });

  for (const [shell, check, marker] of [
    ["zsh", ["zsh", "-n"], "compdef _spl spl"],
    ["fish", ["fish", "--no-execute"], "complete -c spl -n '__fish_use_subcommand' -a 'serve'"],
  ] as const) {
    test(`${shell}: a script the shell parses`, async () => {
      const r = await inst.spl(["completion", shell]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(marker);
      expect(r.stdout).toContain("records");
      if (!Bun.which(check[0])) {
        console.log(`skipped the syntax check: ${shell} is not installed`);
        return;
      }
      const file = `${inst.root}/spl.${shell}`;
      await Bun.write(file, r.stdout);
      const parsed = Bun.spawnSync([...check, file], { stdout: "pipe", stderr: "pipe" });
      expect({ code: parsed.exitCode, err: parsed.stderr.toString() }).toEqual({ code: 0, err: "" });
      if (shell === "fish") {
        // fish can be asked what it would complete.
        const offered = (line: string) => Bun.spawnSync(["fish", "--no-config", "-c", `source ${file}; complete -C'${line}'`]).stdout.toString().split("\n").map((l) => l.split("\t")[0]);
        expect(offered("spl thr")).toContain("thread");
        expect(offered("spl thread ")).toEqual(expect.arrayContaining(["list", "records", "state"]));
        expect(offered("spl serve --d")).toContain("--daemon");
      }
    });
  }

  test("an unknown or missing shell is a usage error (exit 2) naming the choices", async () => {
    const r = await inst.spl(["completion", "tcsh"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe("error: unknown shell 'tcsh' — use one of: bash, zsh, fish (e.g. source <(spl completion bash))");
    expect((await inst.spl(["completion"])).code).toBe(2);
  });
});
