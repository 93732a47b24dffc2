// The HTTP application: one Elysia app served on TCP and on the Unix socket. Every error leaves
// as the SPEC 6 envelope; nothing a client sends can produce a stack trace in the answer.
import { Elysia } from "elysia";
import type { DaemonState } from "./state";
import { ApiError, errorResponse } from "./http";
import { repeatedQueryParam } from "./query";
import { healthRoutes } from "./routes/health";
import { recordRoutes } from "./routes/records";
import { threadRoutes } from "./routes/threads";
import { gate } from "./access";
import { engineRoutes } from "./routes/engine";
import { tokenRoutes } from "./routes/tokens";

export function buildApp(state: DaemonState) {
  const log = state.log.child("spl::http");
  return new Elysia()
    .onError(({ code, error, request }) => {
      if (error instanceof ApiError) return errorResponse(error.status, error.code, error.message);
      const path = new URL(request.url).pathname;
      if (code === "NOT_FOUND") {
        return errorResponse(404, "NOT_FOUND", `no route ${request.method} ${path} — see the API list in README.md`);
      }
      if (code === "PARSE") return errorResponse(400, "INVALID_JSON", "request body is not valid JSON");
      if (code === "VALIDATION") return errorResponse(400, "INVALID_REQUEST", String((error as Error).message).split("\n")[0]!);
      log.error("request failed", { method: request.method, path, error: (error as Error)?.stack ?? String(error) });
      return errorResponse(500, "INTERNAL", "the daemon failed to handle this request; nothing was written — see the log for details");
    })
    .onRequest(({ request }) => {
      // Until rebuild_from_store() finishes only /health answers (503 "starting").
      if (!state.ready && !request.url.endsWith("/health")) {
        return errorResponse(503, "STARTING", "the daemon is starting (rebuilding state from the store) — retry in a moment");
      }
      const repeated = repeatedQueryParam(request.url);
      if (repeated) return errorResponse(400, "INVALID_QUERY", `query parameter '${repeated}' is given more than once — send it once`);
      // Bearer auth, token scopes, CEL permission rules (every route but GET /health).
      return gate(state, request);
    })
    .use(healthRoutes(state))
    .use(recordRoutes(state))
    .use(threadRoutes(state))
    .use(engineRoutes(state))
    .use(tokenRoutes(state));
}

export type App = ReturnType<typeof buildApp>;
