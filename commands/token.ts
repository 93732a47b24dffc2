// spl token create|list|revoke: API tokens for HTTP clients (admin).
import { defineCommand } from "citty";
import { call, resolveTarget, urlArg } from "../lib/client";
import { out, outputArgs, printJson, table, wantsJson } from "../lib/cli/output";
import { UsageError } from "../lib/errors";

const when = (secs: number | null) => (secs === null ? "-" : new Date(secs * 1000).toISOString().replace(".000Z", "Z"));
const status = (t: any) => {
  if (t.revoked) return `revoked ${when(t.revoked_at)}`;
  if (t.expires_at == null) return "active";
  return t.expires_at <= Date.now() / 1000 ? `expired ${when(t.expires_at)}` : `active until ${when(t.expires_at)}`;
};

const create = defineCommand({
  meta: { name: "create", description: "Mint a token; the plaintext is shown once" },
  args: {
    name: { type: "string", description: "A label for the token" },
    actor: { type: "string", description: "DID the token acts as (default: your [identity] actor)" },
    scopes: { type: "string", description: "Comma-separated: records:read,records:write,threads:write,federation:manage,config:read,config:write,admin", valueHint: "csv" },
    env: { type: "string", description: "Environment tag in the token (default local)" },
    "expires-at": { type: "string", description: "When the token stops working: unix seconds or ISO 8601, e.g. 2027-01-31T00:00:00Z" },
    ...outputArgs,
    ...urlArg,
  },
  async run({ args }) {
    const json = wantsJson(args);
    const body: Record<string, unknown> = {};
    if (args.name !== undefined) body.name = args.name;
    if (args.actor !== undefined) body.actor = args.actor;
    if (args.env !== undefined) body.env = args.env;
    const expires = args["expires-at"];
    if (expires !== undefined) body.expires_at = /^\d+$/.test(expires) ? Number(expires) : expires;
    if (args.scopes !== undefined) {
      const { parseScopes } = await import("../lib/auth/tokens");
      try {
        body.scopes = parseScopes(args.scopes);
      } catch (err) {
        throw new UsageError((err as Error).message, "e.g. --scopes records:read,config:read");
      }
    }
    const t = await call("POST", "/v1/tokens", body, resolveTarget(args.url));
    const { token, ...info } = t;
    // The plaintext never goes into JSON output (it would end up in logs and files); print it once.
    if (json) {
      printJson(info);
      process.stderr.write(`token (shown once): ${token}\n`);
      return;
    }
    out(`token ${info.id} for ${info.actor} (scopes ${info.scopes.join(",")})\n\n  ${token}\n\nStore it now: it is shown only once (the instance keeps only its hash). Use it as SPL_TOKEN or 'Authorization: Bearer <token>'.`);
  },
});

const list = defineCommand({
  meta: { name: "list", description: "List tokens (ids, actors, scopes; never secrets)" },
  args: { ...outputArgs, ...urlArg },
  async run({ args }) {
    const json = wantsJson(args);
    const { data } = await call("GET", "/v1/tokens", undefined, resolveTarget(args.url));
    if (json) return printJson(data);
    if (!data.length) return out("no tokens");
    out(
      table(
        ["ID", "NAME", "ACTOR", "SCOPES", "CREATED", "STATUS"],
        data.map((t: any) => [t.id, t.name || "-", t.actor, t.scopes.join(","), when(t.created_at), status(t)]),
      ),
    );
  },
});

const revoke = defineCommand({
  meta: { name: "revoke", description: "Revoke a token by id (takes effect on the next request)" },
  args: { id: { type: "positional", required: true, description: "Token id (see 'spl token list')" }, reason: { type: "string", description: "Why" }, ...outputArgs, ...urlArg },
  async run({ args }) {
    const json = wantsJson(args);
    const t = await call("POST", `/v1/tokens/${encodeURIComponent(args.id)}/revoke`, args.reason ? { reason: args.reason } : {}, resolveTarget(args.url));
    if (json) return printJson(t);
    out(`revoked token ${t.id} (${t.actor})`);
  },
});

export default defineCommand({
  meta: { name: "token", description: "API tokens for HTTP access" },
  subCommands: { create, list, revoke },
});
