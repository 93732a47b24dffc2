// GET /v1/dispatches[?active=true][&limit=N]: dispatches from the dispatch fold, most recent
// first, with the reconciler's queue and slot counts (`spl dispatch list`).
import { ApiError, json } from "../api/http";
import { decimalParam } from "../api/query";
import { route } from "../api/route";
import type { ReconcilerService } from "./service";

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 10_000;

export function dispatchRoutes(service: ReconcilerService) {
  return [
    route({ method: "GET", path: "/v1/dispatches", cls: "status_read", doc: { summary: "Dispatches, most recent first, and the reconciler's counts", query: { active: "true: only dispatches not yet closed", limit: "at most this many (default 100)" } } }, ({ query }) => {
      const active = query.active;
      if (active !== undefined && active !== "true" && active !== "false") throw new ApiError(400, "INVALID_QUERY", "'active' must be true or false");
      const limit = query.limit === undefined ? DEFAULT_LIMIT : decimalParam(query.limit);
      if (!Number.isInteger(limit) || limit > MAX_LIMIT) throw new ApiError(400, "INVALID_QUERY", `'limit' must be an integer from 0 to ${MAX_LIMIT}`);
      const table = service.dispatches;
      return json(200, {
        object: "list",
        data: table.list(active === "true", limit),
        total: table.size,
        active: table.active,
        reconciler: service.reconciler.stats,
      });
    }),
  ];
}
