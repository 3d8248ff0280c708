/**
 * The install manifest: what `postern install` created, in order, so that
 * `postern uninstall` removes exactly that and restores what it moved aside.
 * It lives in the configuration directory (as Postfix's postfix-files does),
 * which root owns; never in data_directory, which mail_owner can write.
 *
 * Read as root by uninstall, which trusts it to name files to delete: the
 * file must be root's (or the invoker's) and writable by nobody else, at
 * most 1 MB, and every entry is checked for shape before anything happens.
 */
import { closeSync, constants as fsc, fstatSync, openSync, readSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { replaceFileDurably } from "../../util/durable-file.ts";
import { ExitError, EX_CONFIG, EX_NOINPUT } from "../../util/sysexits.ts";

/**
 * What an entry belongs to: the program (removed by every uninstall), the
 * configuration and the queue (kept unless --purge).
 */
export type Part = "program" | "config" | "queue";

export type ManifestEntry =
  /** contents: postern's own data (queue, data_directory), which uninstall --purge removes with the directory. */
  | { kind: "directory"; path: string; part: Part; contents?: boolean }
  | { kind: "file"; path: string; part: Part; backup?: string }
  | { kind: "link"; path: string; target: string; part: Part; backup?: string }
  /** simulated: recorded under --root, where no user is created for real. */
  | { kind: "user" | "group"; name: string; part: Part; simulated?: boolean; command?: string };

export interface Manifest {
  version: 1;
  entries: ManifestEntry[];
}

const MAX_SIZE = 1 << 20;
const PARTS = new Set(["program", "config", "queue"]);

const goodPath = (p: unknown): p is string => typeof p === "string" && p.startsWith("/") && !p.split("/").includes("..") && !p.includes("\0");

function checkEntry(e: unknown, where: string): ManifestEntry {
  const bad = (why: string) => new ExitError(EX_CONFIG, `${where}: ${why}; remove the entry or the file by hand`);
  if (typeof e !== "object" || e === null) throw bad("an entry is not an object");
  const r = e as Record<string, unknown>;
  if (!PARTS.has(r.part as string)) throw bad(`unknown part "${String(r.part)}"`);
  switch (r.kind) {
    case "directory":
    case "file":
    case "link":
      if (!goodPath(r.path)) throw bad(`"${String(r.path)}" is not an absolute path without ".."`);
      if (r.backup !== undefined && !goodPath(r.backup)) throw bad(`backup "${String(r.backup)}" is not an absolute path`);
      if (r.kind === "link" && typeof r.target !== "string") throw bad(`the link ${r.path} has no target`);
      return r as ManifestEntry;
    case "user":
    case "group":
      if (typeof r.name !== "string" || !/^[a-z_][a-z0-9_-]{0,31}$/.test(r.name)) throw bad(`"${String(r.name)}" is not a user or group name`);
      return r as ManifestEntry;
    default:
      throw bad(`unknown kind "${String(r.kind)}"`);
  }
}

/** The manifest at `path` (on disk), or undefined when there is none. */
export function readManifest(path: string): Manifest | undefined {
  // whoever can write the directory can swap the file: it must be as trusted as the file
  try {
    const dir = statSync(dirname(path));
    if ((dir.uid !== 0 && dir.uid !== process.geteuid?.()) || dir.mode & 0o022) {
      throw new ExitError(EX_CONFIG, `${dirname(path)} is writable by a user other than root: the install manifest in it is not trusted`);
    }
  } catch (err) {
    if (err instanceof ExitError) throw err;
    return undefined;
  }
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ExitError(EX_NOINPUT, `cannot open the install manifest ${path}: ${(err as Error).message}`);
  }
  let text: string;
  try {
    const st = fstatSync(fd);
    const me = process.geteuid?.() ?? 0;
    if (!st.isFile()) throw new ExitError(EX_CONFIG, `${path} is not a regular file`);
    if (st.uid !== 0 && st.uid !== me) throw new ExitError(EX_CONFIG, `${path} is owned by uid ${st.uid}, not by root: not trusted`);
    if (st.mode & 0o022) throw new ExitError(EX_CONFIG, `${path} is writable by group or others: not trusted`);
    if (st.size > MAX_SIZE) throw new ExitError(EX_CONFIG, `${path} is larger than ${MAX_SIZE} bytes`);
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < st.size) {
      const n = readSync(fd, buf, got, st.size - got, got);
      if (n === 0) break;
      got += n;
    }
    text = buf.subarray(0, got).toString("utf8");
  } finally {
    closeSync(fd);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ExitError(EX_CONFIG, `${path}: not valid JSON: ${(err as Error).message}`);
  }
  const d = doc as Record<string, unknown>;
  if (typeof doc !== "object" || doc === null || d.version !== 1 || !Array.isArray(d.entries)) {
    throw new ExitError(EX_CONFIG, `${path}: not a postern install manifest (version 1)`);
  }
  return { version: 1, entries: d.entries.map((e) => checkEntry(e, path)) };
}

export function writeManifest(path: string, manifest: Manifest): void {
  replaceFileDurably(path, `${JSON.stringify(manifest, null, 1)}\n`, 0o600);
}
