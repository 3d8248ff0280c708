/**
 * Configurations for unit tests: each call writes `text` as postern.toml in
 * a fresh directory under the test file's own temporary root and loads it
 * with the real loader. Runs in the test process as whoever runs the tests;
 * the text comes from the test itself.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig, type Config } from "../../src/global/config/config.ts";

/** A Config loaded from `text` written as postern.toml in a new directory under `root`, named from `name`. */
export function configIn(root: string, text: string, name = "c"): Config {
  const dir = mkdtempSync(join(root, `${name}-`));
  writeFileSync(join(dir, "postern.toml"), text);
  return loadConfig(dir);
}

/** `configFrom(text)` for one test file: every configuration starts with `preamble` and lives under `root`. */
export function configMaker(root: string, preamble = ""): (text?: string) => Config {
  return (text = "") => configIn(root, preamble + text);
}
