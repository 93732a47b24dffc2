// spl completion bash|zsh|fish (issue 16 item 6, issue 28 item 5), generated from the command
// tree of the compiled binary; bash completion is exercised in a real bash, fish's in fish (each
// command path is offered only the flags that command takes).
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
    ["fish", ["fish", "--no-execute"], `complete -c spl -n "test (__spl_path) = ''" -a 'serve'`],
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
        // A subcommand gets its own flags only: `spl fleet status` has no --port (`spl status` has).
        expect(offered("spl fleet status --")).not.toContain("--port");
        expect(offered("spl status --")).toContain("--port");
        expect(offered("spl fleet status --port 1 --")).toEqual(offered("spl fleet status --"));
        // Every command path: fish offers exactly the flags bash offers there (bash's walk is
        // checked above), in one fish and one bash process.
        const paths: string[] = [];
        for (const m of r.stdout.matchAll(/^ {4}case '([^']*)'\n {6}printf '%s\\n' (.*)$/gm)) {
          for (const sub of m[2]!.split(" ")) paths.push(`${m[1] ? `${m[1]} ` : ""}${sub.slice(1, -1)}`);
        }
        expect(paths).toEqual(expect.arrayContaining(["fleet status", "status", "thread records", "backup push"]));
        const fishSays = Bun.spawnSync(["fish", "--no-config", "-c", `source ${file}; for p in ${paths.map((p) => `'${p}'`).join(" ")}; for f in (complete -C"spl $p --"); echo "$p	$f"; end; end`]).stdout.toString();
        const bashScript = (await inst.spl(["completion", "bash"])).stdout;
        const bashSays = Bun.spawnSync(["bash", "--norc", "--noprofile", "-c", `${bashScript}\nfor p in ${paths.map((p) => `'${p}'`).join(" ")}; do _spl_words "$p"; for f in $opts; do echo "$p	$f"; done; done`]).stdout.toString();
        const flagsBy = (out: string) => {
          const by: Record<string, string[]> = {};
          for (const line of out.split("\n").filter(Boolean)) {
            const [p, f] = line.split("\t");
            if (f!.startsWith("--")) (by[p!] ??= []).push(f!);
          }
          for (const k of Object.keys(by)) by[k]!.sort();
          return by;
        };
        const fishFlags = flagsBy(fishSays);
        const bashFlags = flagsBy(bashSays);
        const wrong = paths.filter((p) => JSON.stringify(fishFlags[p] ?? []) !== JSON.stringify(bashFlags[p] ?? [])).map((p) => ({ path: p, fish: fishFlags[p], bash: bashFlags[p] }));
        expect(wrong).toEqual([]);
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
