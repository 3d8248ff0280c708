/**
 * The registry is the one record of what postern acts on: a parameter left
 * unmarked (acted on) or marked "refuses" must have a reader in src/, and a
 * parameter that code reads must not be marked "unsupported". A parameter
 * another change adds without a reader fails here, by name.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { paramRegistry } from "../../../../src/global/config/registry.ts";
import { ROOT } from "../../../helpers/run.ts";

/** Files that name parameters without reading them: the registry and the support checks. */
const NOT_READERS = ["src/global/config/params/", "src/global/config/support.ts", "src/global/config/postfix-params.ts", "src/global/config/value-checks.ts", "src/cmd/import/"];

function sources(dir: string, out: string[] = []): string[] {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith(".ts")) out.push(p);
  }
  return out;
}

const files = sources(join(ROOT, "src")).filter((f) => !NOT_READERS.some((n) => relative(ROOT, f).startsWith(n)));
const code = files.map((f) => readFileSync(f, "utf8")).join("\n");
/** Every quoted word: config.str("name"), n("suffix"), ["name", ...] tables of names. */
const quoted = new Set([...code.matchAll(/["'`]([A-Za-z0-9_]+)["'`]/g)].map((m) => m[1]!));
/** `${prefix}_suffix` templates: per-transport and per-protocol names. */
const templateSuffixes = new Set([...code.matchAll(/\$\{[^}]+\}_([A-Za-z0-9_]+)`/g)].map((m) => m[1]!));
/** Defaults refer to other parameters ($name, ${name}, expanded("name")): reading one reads those. */
const defaultsText = [...paramRegistry().values()].map((d) => String(d.default)).join("\n");

function hasReader(name: string): boolean {
  if (quoted.has(name)) return true;
  if (new RegExp(`\\$\\{?${name}\\b|["'\`]${name}["'\`]`).test(defaultsText)) return true;
  // a name read as prefix + suffix: "smtp_" + n("tls_CAfile"), `${transport}_destination_recipient_limit`
  const parts = name.split("_");
  for (let i = 1; i < parts.length; i++) {
    const suffix = parts.slice(i).join("_");
    if (templateSuffixes.has(suffix)) return true;
    if (suffix.includes("_") && quoted.has(suffix)) return true;
  }
  return false;
}

describe("what the registry says postern acts on", () => {
  test("every parameter marked as acted on has a reader in src/", () => {
    const unread = [...paramRegistry().values()].filter((d) => (!d.support || d.support.kind === "refuses") && !hasReader(d.name)).map((d) => d.name);
    // a name here: read it where it takes effect, or mark it unsupported()/installOnly() in the registry
    expect(unread).toEqual([]);
  });

  test("every parameter that code reads through a getter is in the registry and not marked unsupported", () => {
    const read = new Set([...code.matchAll(/\.(?:str|int|bool|time|list)\(\s*["'`]([a-z0-9_]+)["'`]\s*\)/gi)].map((m) => m[1]!));
    const wrong: string[] = [];
    for (const name of read) {
      const def = paramRegistry().get(name);
      if (!def) wrong.push(`${name}: read but not in the registry`);
      else if (def.support?.kind === "unsupported") wrong.push(`${name}: read but marked unsupported`);
    }
    expect(wrong).toEqual([]);
  });

  test("the check really finds readers: a name nobody reads is reported", () => {
    expect(hasReader("message_strip_characters")).toBe(false);
    expect(hasReader("smtp_always_send_ehlo")).toBe(false);
    expect(hasReader("myhostname")).toBe(true);
    expect(hasReader("smtp_tls_CAfile")).toBe(true);
    expect(hasReader("relay_destination_concurrency_limit")).toBe(true);
  });
});
