// One table of rule kinds (lib/engine/rule-kinds.ts) feeds the fold's validation and the CLI's
// add-* verbs and `spl expr --context`: the compiled binary offers exactly what the table says.
import { describe, expect, test } from "bun:test";
import { RULE_KINDS, RULE_TOPICS } from "../lib/engine/rule-kinds";
import { CEL_CONTEXTS } from "../lib/engine/vocabulary";
import { configBodyProblem } from "../lib/engine/config-validate";
import { Instance } from "./harness";

const inst = new Instance();

describe("rule kinds", () => {
  test("every kind has its spl config verb, with a flag per field", async () => {
    const help = await inst.spl(["config", "--help"]);
    expect(help.code).toBe(0);
    for (const topic of RULE_TOPICS) {
      const kind = RULE_KINDS[topic];
      expect(help.stdout).toContain(kind.verb);
      const verb = await inst.spl(["config", kind.verb, "--help"]);
      expect(verb.code).toBe(0);
      for (const flag of ["name", "expression", "priority", "url", ...kind.fields.map((f) => f.name), ...Object.keys(kind.sugar?.flags ?? {})]) {
        expect({ verb: kind.verb, flag, shown: verb.stdout.includes(`--${flag}`) }).toEqual({ verb: kind.verb, flag, shown: true });
      }
    }
  });

  test("spl expr check takes every context of the vocabulary, and only those", async () => {
    for (const context of CEL_CONTEXTS) expect((await inst.spl(["expr", "check", "true", "--context", context])).code).toBe(0);
    const bad = await inst.spl(["expr", "check", "true", "--context", "trigger"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`use one of ${CEL_CONTEXTS.join(", ")}`);
  });

  test("the fold checks each kind's fields and context from the table", () => {
    for (const topic of RULE_TOPICS) {
      const kind = RULE_KINDS[topic];
      const good: Record<string, unknown> = { topic, name: "n", expression: "true" };
      for (const f of kind.fields) good[f.name] = f.oneOf ? f.oneOf[0] : "x";
      expect({ topic, problem: configBodyProblem(good) }).toEqual({ topic, problem: null });
      for (const f of kind.fields.filter((f) => f.required)) {
        const problem = configBodyProblem({ ...good, [f.name]: "" });
        expect({ topic, field: f.name, error: problem?.error.startsWith(f.name) }).toEqual({ topic, field: f.name, error: true });
      }
      // `resource` is bound in the permission context only.
      const resource = configBodyProblem({ ...good, expression: 'resource == "x"' });
      expect({ topic, refused: resource !== null }).toEqual({ topic, refused: kind.context !== "permission" });
    }
  });
});
