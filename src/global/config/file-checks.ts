/**
 * What `postern check` can say about the files a configuration names, as
 * warnings (Postfix only warns about these, and a lookup that cannot open
 * its table defers mail rather than losing it): a table's file or index that
 * is missing or that mail_owner cannot read (the daemons read tables as
 * mail_owner), one that is group- or world-writable or not owned by root,
 * TLS certificate and key files that are missing or unreadable, and
 * database tables' files (ldap:, mysql:, pgsql:) that hold a password and
 * that others can read (the daemons read those as root before they drop
 * privileges, so 0600 works).
 *
 * Run by `postern check` (root); stat()s files, and reads only the
 * database tables' files to see whether they hold a password.
 */
import { readFileSync, statSync, type Stats } from "node:fs";
import { PASSWORD_SETTINGS, parseSettingsText, settingsFilesOf } from "../tables/db-common.ts";
import type { Config } from "./config.ts";
import { splitList } from "./value-text.ts";
import { INDEXED_TYPES } from "../tables/table-types.ts";
import { getpwnam } from "../../util/passwd.ts";

/** Table types backed by one file: the index (indexed types) or the file itself. */
const FILE_TYPES = new Set([...INDEXED_TYPES, "texthash", "regexp", "pcre", "cidr", "sqlite"]);

/** Parameters that name files by path. */
const TLS_FILES = ["smtpd_tls_cert_file", "smtpd_tls_key_file", "smtpd_tls_CAfile", "smtp_tls_cert_file", "smtp_tls_key_file", "smtp_tls_CAfile", "lmtp_tls_CAfile"];

function readableBy(st: Stats, uid: number, gid: number): boolean {
  if (uid === 0) return true;
  if (st.uid === uid) return (st.mode & 0o400) !== 0;
  if (st.gid === gid) return (st.mode & 0o040) !== 0;
  return (st.mode & 0o004) !== 0;
}

function safeStr(config: Config, name: string): string {
  try {
    return config.str(name);
  } catch {
    return "";
  }
}

export function configFileWarnings(config: Config): string[] {
  const warnings: string[] = [];
  const owner = getpwnam(safeStr(config, "mail_owner"));
  const seen = new Set<string>();
  const where = (name: string) => {
    const line = config.lineOf(name);
    return `${config.path}${line !== undefined ? `, line ${line}` : ""}: ${name}`;
  };
  const checkFile = (name: string, path: string, what: string, readers: "mail_owner" | "root") => {
    if (seen.has(path)) return;
    seen.add(path);
    let st: Stats;
    try {
      st = statSync(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      warnings.push(`${where(name)}: ${what} ${path}: ${code === "ENOENT" ? "No such file or directory" : (err as Error).message}`);
      return;
    }
    if (readers === "mail_owner" && owner && !readableBy(st, owner.uid, owner.gid)) warnings.push(`${where(name)}: ${what} ${path} is not readable by mail_owner ${owner.name}, who looks it up`);
    if ((st.mode & 0o022) !== 0) warnings.push(`${where(name)}: group or other writable: ${path}`);
    if (st.uid !== 0 && (!owner || st.uid !== owner.uid)) warnings.push(`${where(name)}: not owned by root: ${path}`);
  };
  for (const name of config.setNames()) {
    const raw = config.raw(name) ?? "";
    if (!raw.includes(":") && !raw.includes("$")) continue;
    const readers = name === "alias_maps" || name === "alias_database" ? "root" : "mail_owner";
    for (const word of splitList(safeStr(config, name))) {
      let w = word;
      while (w.startsWith("proxy:")) w = w.slice("proxy:".length);
      const m = /^([a-z0-9_]+):(\/\S+)$/.exec(w);
      if (!m || !FILE_TYPES.has(m[1]!)) continue;
      const type = m[1]!;
      const path = m[2]!;
      if (INDEXED_TYPES.has(type)) checkFile(name, `${path}.sqlite`, `index of ${type}:${path} (build it with postmap or postalias)`, readers);
      else checkFile(name, path, `${type} table`, readers);
    }
  }
  for (const { param, type, path } of settingsFilesOf(config)) {
    const before = warnings.length;
    checkFile(param, path, `${type} table`, "root");
    if (warnings.length > before) continue;
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch {
      continue;
    }
    const st = statSync(path);
    const settings = parseSettingsText(text);
    if (PASSWORD_SETTINGS.some((p) => settings.get(p)) && (st.mode & 0o004) !== 0) warnings.push(`${where(param)}: ${type} table ${path} holds a password and other users can read it: chmod o-r ${path}`);
  }
  const tlsLevel = safeStr(config, "smtpd_tls_security_level").trim().toLowerCase();
  for (const name of TLS_FILES) {
    if (!config.isSet(name)) continue;
    if (name.startsWith("smtpd_tls_") && (tlsLevel === "" || tlsLevel === "none")) continue;
    const path = safeStr(config, name).trim();
    if (path) checkFile(name, path, "file", "root");
  }
  return warnings;
}
