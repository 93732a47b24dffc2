// Preloaded by bunfig.toml: a global afterAll that runs once all test files have finished.
import { afterAll } from "bun:test";
import { cleanupAll } from "./harness";

afterAll(cleanupAll);
