/**
 * Golden cases for `postconf -e/-X/-#`: each directory under
 * test/golden/postconf-edit/ holds input.toml, args.txt (first line the
 * option, then one argument a line) and expected.toml. The unit test applies
 * the edit functions and the e2e test runs dist/postconf on the same cases.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./run.ts";

export const EDIT_GOLDEN_DIR = join(ROOT, "test/golden/postconf-edit");

export interface EditCase {
  name: string;
  input: string;
  option: "-e" | "-X" | "-#";
  args: string[];
  expected: string;
}

export function editCases(dir = EDIT_GOLDEN_DIR): EditCase[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const read = (file: string) => readFileSync(join(dir, name, file), "utf8");
      const [option, ...args] = read("args.txt").replace(/\n$/, "").split("\n");
      if (option !== "-e" && option !== "-X" && option !== "-#") throw new Error(`${name}/args.txt: the first line must be -e, -X or -#, not "${option}"`);
      if (args.length === 0) throw new Error(`${name}/args.txt: no arguments after the option`);
      return { name, input: read("input.toml"), option, args, expected: read("expected.toml") };
    });
}
