// The emit verbs (spl intend|do|know|learn): one record of that act, posted to the daemon.
import { defineCommand } from "citty";
import { randomBytes } from "node:crypto";
import { call, resolveTarget, urlArg } from "../client";
import { loadConfig } from "../config";
import { UsageError } from "../errors";
import { homePaths } from "../paths";
import { sha256Hex } from "../records/id";
import { jsonTextProblem } from "../records/json-text";
import type { Act } from "../records/types";
import { out, outputArgs, printJson, wantsJson } from "./output";

const DESCRIPTIONS: Record<string, string> = {
  INTEND: "Declare a goal (opens a thread unless --thread is given)",
  DO: "Record an action performed",
  KNOW: "Record an observation or fact (--fulfills closes a thread)",
  LEARN: "Record a lasting insight or decision (engine config is LEARN on th_engine_config)",
};

function parseBody(text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--body is not valid JSON: ${(err as Error).message}`, `e.g. --body '{"topic":"auth_required","enabled":true}'`);
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) throw new UsageError("--body must be a JSON object", "e.g. --body '{\"key\":\"value\"}'");
  // The daemon would refuse what JSON.parse just changed (a repeated key, a rounded integer).
  const problem = jsonTextProblem(text);
  if (problem) throw new UsageError(`--body ${problem.what}`, problem.fix);
  return body as Record<string, unknown>;
}

export function emitCommand(act: Act) {
  const verb = act.toLowerCase();
  return defineCommand({
    meta: { name: verb, description: DESCRIPTIONS[act] },
    args: {
      text: { type: "positional", required: false, description: "What to record (stored as body.text)" },
      thread: { type: "string", description: "Thread id (default: a new th_<64 hex> thread)" },
      body: { type: "string", description: "JSON object merged into the body", valueHint: "json" },
      actor: { type: "string", description: "Actor DID (default: [identity] actor in config.toml)" },
      fulfills: { type: "string", description: "Record id this one fulfils (closes that thread)", valueHint: "record-id" },
      ...urlArg,
      ...outputArgs,
    },
    async run({ args }) {
      const json = wantsJson(args);
      const extra = parseBody(args.body);
      if (args.text === undefined && args.body === undefined) {
        throw new UsageError(`nothing to record`, `give text (spl ${verb} "...") or --body JSON`);
      }
      const actor = args.actor ?? loadConfig(homePaths().config).identity.actor;
      const body: Record<string, unknown> = { ...(args.text !== undefined ? { text: args.text } : {}), ...extra };
      const parents: string[] = [];
      if (args.fulfills !== undefined) {
        body.fulfills = args.fulfills;
        parents.push(args.fulfills);
      }
      const thread = args.thread ?? `th_${sha256Hex(`${actor}\n${args.text ?? ""}\n${randomBytes(16).toString("hex")}`)}`;
      const record = await call("POST", "/v1/records", { act, actor, thread, body, parents }, resolveTarget(args.url));
      if (json) return printJson(record);
      out(`${record.duplicate ? "already recorded" : "recorded"} ${act} ${record.id}\n  thread: ${record.thread}\n  clock:  ${record.clock}`);
    },
  });
}
