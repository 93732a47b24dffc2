// The completion gate: `spl task done` refuses while the git working tree has uncommitted
// changes to tracked files, so the commit recorded on the task is the work that was done.
// It runs in the CLI process against the operator's tree; the daemon never sees the repo.
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { UserError } from "../errors";

export type TreeState =
  | { inRepo: false }
  | {
      inRepo: true;
      /** The repository's top-level directory. */
      repo: string;
      /** HEAD's commit, null in a repository with no commits yet. */
      commit: string | null;
      /** Tracked paths modified in the work tree or staged in the index. */
      changed: string[];
      /** Untracked paths: reported, never blocking. */
      untracked: string[];
    };

interface GitRun {
  code: number;
  stdout: string;
  stderr: string;
}

function git(dir: string, args: string[]): GitRun {
  let proc;
  try {
    proc = Bun.spawnSync(["git", ...args], { cwd: dir, stdout: "pipe", stderr: "pipe", env: { ...process.env, GIT_OPTIONAL_LOCKS: "0", LC_ALL: "C" } });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "ENOENT" || /not found|ENOENT/i.test(e.message)) {
      throw new UserError("the completion gate needs git, which is not installed or not on PATH", "install git, or pass --force to record the task as done without the check");
    }
    throw err;
  }
  return { code: proc.exitCode ?? 1, stdout: proc.stdout.toString(), stderr: proc.stderr.toString().trim() };
}

/** Splits `git status --porcelain=v1 -z` output into tracked changes and untracked paths. */
export function parsePorcelain(out: string): { changed: string[]; untracked: string[] } {
  const changed: string[] = [];
  const untracked: string[] = [];
  const entries = out.split("\0");
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.length < 4) continue;
    const xy = e.slice(0, 2);
    const path = e.slice(3);
    if (xy === "??") untracked.push(path);
    else if (xy !== "!!") changed.push(path);
    // A rename or copy is followed by its source path as a separate entry.
    if (xy[0] === "R" || xy[0] === "C") i++;
  }
  return { changed, untracked };
}

/** Inspects the work tree containing `dir`. Throws UserError when git itself cannot answer. */
export function inspectTree(dir: string): TreeState {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) {
    throw new UserError(`--repo ${dir} is not a directory`, "pass the path of a git work tree");
  }
  const top = git(abs, ["rev-parse", "--show-toplevel"]);
  if (top.code !== 0) {
    if (/not a git repository/i.test(top.stderr)) return { inRepo: false };
    const dubious = /dubious ownership in repository at '([^']+)'/i.exec(top.stderr);
    if (dubious) {
      throw new UserError(
        `git refuses to read ${dubious[1]}: it is owned by another user (git's "dubious ownership" check)`,
        `run the command as that user, or mark it safe: git config --global --add safe.directory ${dubious[1]}`,
      );
    }
    throw new UserError(`git could not read ${abs}: ${top.stderr.split("\n")[0]}`, "fix the repository (see 'git status' there), or pass --force");
  }
  const repo = top.stdout.trim();
  const status = git(repo, ["status", "--porcelain=v1", "-z", "--untracked-files=normal"]);
  if (status.code !== 0) {
    throw new UserError(`git status failed in ${repo}: ${status.stderr.split("\n")[0]}`, "run 'git status' there to see why, or pass --force");
  }
  const head = git(repo, ["rev-parse", "--verify", "-q", "HEAD"]);
  return { inRepo: true, repo, commit: head.code === 0 ? head.stdout.trim() : null, ...parsePorcelain(status.stdout) };
}

const LISTED = 10;

/** The gate's refusal: what is dirty, where, and the two ways forward. */
export function uncommittedError(state: Extract<TreeState, { inRepo: true }>): UserError {
  const n = state.changed.length;
  const shown = state.changed.slice(0, LISTED).map((p) => `\n  ${p}`).join("");
  const more = n > LISTED ? `\n  ... and ${n - LISTED} more` : "";
  return new UserError(
    `uncommitted changes in ${state.repo} (${n} file${n === 1 ? "" : "s"})`,
    `commit your work first, or pass --force if you are sure (e.g. triage of pre-existing tasks)${shown}${more}`,
  );
}
