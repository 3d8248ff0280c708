/**
 * The settings files of the tables that talk to a database server (ldap:,
 * and mysql:, pgsql: when present): Postfix's `name = value` format with
 * comments and continuation lines. Such a file may hold a password
 * (bind_pw, password), and an administrator may keep it readable by root
 * only, as Postfix allows because its daemons open their tables before
 * they leave root. Here every daemon reads the files its configuration
 * names while still root (preloadSettingsFiles, called by the daemon
 * skeleton before the privilege drop); later, a file the process may read
 * is read afresh, and one it may not (EACCES) is served from that copy.
 *
 * Runs in daemons (preload as root) and in whichever process opens such a
 * table. The files are trusted configuration; their contents stay in the
 * process's memory.
 */
import { readFileSync } from "node:fs";
import type { Config } from "../config/config.ts";
import { splitList } from "../config/value-text.ts";
import { logicalLines } from "./logical-lines.ts";
import { describeFsError } from "./reloading-file.ts";

/** Table types whose name is a settings file. */
export const SETTINGS_FILE_TYPES = new Set(["ldap"]);

/** Settings that hold a secret, for `postern check`'s warning about files others may read. */
export const PASSWORD_SETTINGS = ["bind_pw", "password"];

const preloaded = new Map<string, string>();

export class SettingsFileError extends Error {}

/** Every settings-file table the configuration names, its services' overrides included: parameter, type and path. */
export function settingsFilesOf(config: Config): Array<{ param: string; type: string; path: string }> {
  const out: Array<{ param: string; type: string; path: string }> = [];
  const scan = (view: Config, names: Iterable<string>, prefix: string) => {
    for (const param of names) {
      const raw = view.raw(param) ?? "";
      if (!raw.includes(":") && !raw.includes("$")) continue;
      let value: string;
      try {
        value = view.str(param);
      } catch {
        continue;
      }
      for (const word of splitList(value)) {
        let w = word;
        while (w.startsWith("proxy:")) w = w.slice("proxy:".length);
        const m = /^([a-z0-9_]+):(\/\S+)$/.exec(w);
        if (m && SETTINGS_FILE_TYPES.has(m[1]!)) out.push({ param: prefix + param, type: m[1]!, path: m[2]! });
      }
    }
  };
  scan(config, config.setNames(), "");
  let services: ReturnType<Config["services"]> = [];
  try {
    services = config.services();
  } catch {
    // a broken [services] table is config.validate()'s to report
  }
  for (const svc of services) scan(config.withOverrides(svc.overrides), svc.overrides.keys(), `services.${svc.name}.`);
  return out;
}

/** Reads every settings file the configuration names into memory (call as root, before the privilege drop). */
export function preloadSettingsFiles(config: Config): void {
  for (const { path } of settingsFilesOf(config)) {
    try {
      preloaded.set(path, readFileSync(path, "utf8"));
    } catch {
      // the table's first lookup reports it
    }
  }
}

/** The text of a settings file: read now, or the copy read as root when this process may not read it. */
export function settingsFileText(path: string): string {
  try {
    const text = readFileSync(path, "utf8");
    if (preloaded.has(path)) preloaded.set(path, text);
    return text;
  } catch (err) {
    const copy = preloaded.get(path);
    if (copy !== undefined && (err as NodeJS.ErrnoException).code === "EACCES") return copy;
    throw new SettingsFileError(`open ${path}: ${describeFsError(err)}`);
  }
}

/** The `name = value` pairs of a settings file's text; `warn` hears about lines that are neither. */
export function parseSettings(text: string, warn?: (line: number, message: string) => void): Map<string, string> {
  const v = new Map<string, string>();
  for (const l of logicalLines(text)) {
    const m = /^([A-Za-z0-9_]+)\s*=\s*([\s\S]*)$/.exec(l.text);
    if (m) v.set(m[1]!, m[2]!.trim());
    else warn?.(l.line, 'ignoring text without "name = value"');
  }
  return v;
}
