/**
 * In-place edits of postern.toml for `postconf -e`, `-X` and `-#`: the text
 * is changed line by line so comments, blank lines and order stay as the
 * administrator left them (smol-toml's stringify would drop comments). The
 * result is parsed before it is returned; an edit never produces a file the
 * next command cannot read.
 */
import { parse as parseToml } from "smol-toml";
import { paramDef } from "./registry.ts";
import { ConfigError } from "./source.ts";
import { scanLayout, type LayoutEntry } from "./toml-layout.ts";

/** TOML text for a Postfix-style value: numbers and booleans typed when the parameter is, strings otherwise. */
export function tomlValueFor(path: string, value: string): string {
  const [first, service, attr] = path.split(".");
  let name = path;
  if (first === "services" && service && attr) {
    if (attr === "listen") {
      const items = value.split(/[\s,]+/).filter(Boolean);
      return items.length === 1 ? JSON.stringify(items[0]) : `[${items.map((x) => JSON.stringify(x)).join(", ")}]`;
    }
    if (attr === "process_limit" && /^\d+$/.test(value)) return value;
    if (attr === "enable" && /^(yes|no|true|false)$/i.test(value)) return /^(yes|true)$/i.test(value) ? "true" : "false";
    name = attr; // a parameter override: typed as the parameter is
  }
  const type = paramDef(name)?.type;
  if (type === "int" && /^\d+$/.test(value) && Number.isSafeInteger(Number(value))) return value;
  if (type === "bool" && /^(yes|no|true|false)$/i.test(value)) return /^(yes|true)$/i.test(value) ? "true" : "false";
  return JSON.stringify(value);
}

/** A TOML bare key when possible, quoted otherwise. */
function tomlKey(name: string): string {
  return /^[A-Za-z0-9_-]+$/.test(name) ? name : JSON.stringify(name);
}

function findEntry(entries: LayoutEntry[], path: string): LayoutEntry | undefined {
  return entries.find((e) => e.path === path);
}

function check(text: string): string {
  try {
    parseToml(text);
  } catch (err) {
    throw new ConfigError(`the edit would make the file invalid: ${(err as Error).message.split("\n")[0]}`);
  }
  return text;
}

/** Sets `path` (a parameter, or services.NAME.ATTR) to `value` (Postfix text). */
export function setValue(text: string, path: string, value: string): string {
  const lines = text === "" ? [] : text.replace(/\n$/, "").split("\n");
  const layout = scanLayout(text);
  const tomlValue = tomlValueFor(path, value);
  const existing = findEntry(layout.entries, path);
  if (existing) {
    const first = lines[existing.startLine - 1]!;
    const keyPart = first.slice(0, first.indexOf("=")).trimEnd();
    lines.splice(existing.startLine - 1, existing.endLine - existing.startLine + 1, `${keyPart} = ${tomlValue}${existing.trailingComment ?? ""}`);
    return check(lines.join("\n") + "\n");
  }
  const parts = path.split(".");
  if (parts.length === 1) {
    // A new top-level key goes after the last top-level pair; without one, before the
    // first table and the comment lines directly above it (they describe the table).
    const top = layout.entries.filter((e) => e.table === "");
    let at = lines.length;
    if (top.length) at = top[top.length - 1]!.endLine;
    else if (layout.tables.length) {
      at = layout.tables[0]!.line - 1;
      while (at > 0 && lines[at - 1]!.trimStart().startsWith("#")) at--;
    }
    const insert = [`${tomlKey(path)} = ${tomlValue}`];
    if (!top.length && layout.tables.length) insert.push("");
    lines.splice(at, 0, ...insert);
    return check(lines.join("\n") + "\n");
  }
  const tableName = parts.slice(0, -1).join(".");
  const key = parts[parts.length - 1]!;
  const table = layout.tables.find((t) => t.name === tableName && !t.array);
  if (table) {
    const inTable = layout.entries.filter((e) => e.table === tableName);
    const at = inTable.length ? inTable[inTable.length - 1]!.endLine : table.line;
    lines.splice(at, 0, `${tomlKey(key)} = ${tomlValue}`);
    return check(lines.join("\n") + "\n");
  }
  if (lines.length && lines[lines.length - 1]!.trim() !== "") lines.push("");
  lines.push(`[${parts.slice(0, -1).map(tomlKey).join(".")}]`, `${tomlKey(key)} = ${tomlValue}`);
  return check(lines.join("\n") + "\n");
}

/** Removes `path`; returns undefined when it is not in the file. */
export function removeValue(text: string, path: string): string | undefined {
  const entry = findEntry(scanLayout(text).entries, path);
  if (!entry) return undefined;
  const lines = text.replace(/\n$/, "").split("\n");
  lines.splice(entry.startLine - 1, entry.endLine - entry.startLine + 1);
  return check(lines.length ? lines.join("\n") + "\n" : "");
}

/** Comments `path` out ("#" before each of its lines); undefined when it is not in the file. */
export function commentOutValue(text: string, path: string): string | undefined {
  const entry = findEntry(scanLayout(text).entries, path);
  if (!entry) return undefined;
  const lines = text.replace(/\n$/, "").split("\n");
  for (let i = entry.startLine - 1; i < entry.endLine; i++) lines[i] = `#${lines[i]}`;
  return check(lines.join("\n") + "\n");
}
