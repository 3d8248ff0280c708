/**
 * postern import [-c CONFIG_DIR] [--force] [--dry-run] [--rebuild] POSTFIX_DIR
 *
 * Converts Postfix's POSTFIX_DIR/main.cf and master.cf into
 * CONFIG_DIR/postern.toml (the -c directory, $MAIL_CONFIG, or
 * /etc/postern). Every setting postern cannot honour is listed (file, line,
 * parameter, why) and nothing is written (exit 78) unless --force, which
 * writes those settings commented out. --dry-run prints the file and the
 * report and writes nothing; --rebuild runs the postmap/postalias command
 * that builds postern's index of every hash:/btree:/lmdb:/cdb: table.
 *
 * Runs as the invoking user (root to write /etc/postern); reads the Postfix
 * files as trusted administrator input but bounds their size, and replaces
 * an existing postern.toml only after keeping it as postern.toml.bak.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { locateConfig } from "../../global/config/source.ts";
import { replaceFileDurably } from "../../util/durable-file.ts";
import { ExitError, EX_CANTCREAT, EX_CONFIG, EX_NOINPUT, EX_SOFTWARE, EX_USAGE } from "../../util/sysexits.ts";
import { writeStderr, writeStdout } from "../../util/stdio.ts";
import { convert, type Conversion, type Finding } from "./convert.ts";
import { parseMainCf } from "./main-cf.ts";
import { parseMasterCf } from "./master-cf.ts";

const USAGE = "usage: postern import [-c config_dir] [--force] [--dry-run] [--rebuild] postfix_config_dir";
/** main.cf with every comment is about 30 KB; anything past this is not a Postfix configuration. */
const MAX_FILE_BYTES = 4 * 1024 * 1024;

interface Options {
  configDir?: string;
  force: boolean;
  dryRun: boolean;
  rebuild: boolean;
  postfixDir: string;
}

function parseArgs(args: string[]): Options {
  const o: Partial<Options> & { force: boolean; dryRun: boolean; rebuild: boolean } = { force: false, dryRun: false, rebuild: false };
  const operands: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--force") o.force = true;
    else if (a === "--dry-run" || a === "-n") o.dryRun = true;
    else if (a === "--rebuild") o.rebuild = true;
    else if (a === "-c") {
      const v = args[++i];
      if (v === undefined) throw new ExitError(EX_USAGE, `option -c needs a directory; ${USAGE}`);
      o.configDir = v;
    } else if (a.startsWith("-c") && a.length > 2) o.configDir = a.slice(2);
    else if (a === "--") {
      operands.push(...args.slice(i + 1));
      break;
    }
    else if (a.startsWith("-")) throw new ExitError(EX_USAGE, `unknown option "${a}"; ${USAGE}`);
    else operands.push(a);
  }
  if (operands.length !== 1) throw new ExitError(EX_USAGE, USAGE);
  return { ...o, postfixDir: resolve(operands[0]!) };
}

function readBounded(path: string, required: boolean): string | undefined {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new ExitError(EX_NOINPUT, `${path} is not a regular file`);
    size = st.size;
  } catch (err) {
    if (err instanceof ExitError) throw err;
    if (!required && (err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ExitError(EX_NOINPUT, `cannot read ${path}: ${(err as Error).message}`);
  }
  if (size > MAX_FILE_BYTES) throw new ExitError(EX_NOINPUT, `${path} is ${size} bytes, more than a Postfix configuration file (${MAX_FILE_BYTES})`);
  return readFileSync(path, "utf8");
}

function where(f: Finding): string {
  return `${f.file}${f.line !== undefined ? `, line ${f.line}` : ""}`;
}

/** The one command that builds postern's index next to each table source. */
export function rebuildCommand(c: Conversion, configDir: string): string[][] {
  const out: string[][] = [];
  if (c.postmap.length) out.push(["postmap", "-c", configDir, ...c.postmap]);
  if (c.postalias.length) out.push(["postalias", "-c", configDir, ...c.postalias]);
  return out;
}

function shellWord(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, "'\\''")}'`;
}

export async function main(args: string[]): Promise<number> {
  const opts = parseArgs(args);
  const mainPath = join(opts.postfixDir, "main.cf");
  const masterPath = join(opts.postfixDir, "master.cf");
  const mainText = readBounded(mainPath, true)!;
  const masterText = readBounded(masterPath, false);
  const { directory: configDir, path: tomlPath } = locateConfig(opts.configDir);

  const main = parseMainCf(mainText);
  const master = masterText === undefined ? undefined : parseMasterCf(masterText);
  const syntax: Finding[] = [
    ...main.problems.map((p) => ({ file: mainPath, line: p.line, subject: "", message: p.message })),
    ...(master?.problems ?? []).map((p) => ({ file: masterPath, line: p.line, subject: "", message: p.message })),
  ];
  const input = { postfixDir: opts.postfixDir, mainPath, masterPath, main: main.items, master: master?.entries, configDir };
  let result = convert(input);
  const refused = [...syntax, ...result.refusals];
  if (refused.length && opts.force) {
    // write the refused keys commented out, so that the file passes check and says what it lacks
    const commentOut = new Map<string, string>();
    for (const r of result.refusals) if (r.subject && !r.subject.includes("/")) commentOut.set(r.subject, r.message);
    result = convert({ ...input, commentOut });
    // what the commented-out file still cannot do (nothing, normally) is reported too
    refused.push(...result.refusals);
  }

  const byPlace = (a: Finding, b: Finding) => (a.file === b.file ? (a.line ?? 1e9) - (b.line ?? 1e9) : a.file === mainPath ? -1 : 1);
  refused.sort(byPlace);
  result.notes.sort(byPlace);
  for (const n of result.notes) writeStderr(`postern import: note: ${where(n)}: ${n.subject ? `${n.subject}: ` : ""}${n.message}\n`);
  for (const r of refused) writeStderr(`postern import: ${opts.force ? "warning" : "error"}: ${where(r)}: ${r.message}\n`);
  const commands = rebuildCommand(result, configDir);
  const commandLine = commands.map((c) => ["postern", ...c].map(shellWord).join(" ")).join(" && ");

  if (opts.dryRun) {
    writeStdout(result.toml);
    writeStderr(`postern import: dry run: ${result.parameters} parameters and ${result.services} service(s) would go to ${tomlPath}; ${refused.length} setting(s) postern cannot honour\n`);
    if (commandLine) writeStderr(`postern import: the table indexes would be built with: ${commandLine}\n`);
    return refused.length && !opts.force ? EX_CONFIG : 0;
  }
  if (refused.length && !opts.force) {
    writeStderr(`postern import: ${refused.length} setting(s) above ask for what postern does not do; nothing written (--force writes them commented out)\n`);
    return EX_CONFIG;
  }
  try {
    mkdirSync(configDir, { recursive: true, mode: 0o755 });
    if (existsSync(tomlPath)) {
      copyFileSync(tomlPath, `${tomlPath}.bak`);
      writeStderr(`postern import: the previous ${tomlPath} is kept as ${tomlPath}.bak\n`);
    }
    replaceFileDurably(tomlPath, result.toml, 0o644);
  } catch (err) {
    throw new ExitError(EX_CANTCREAT, `cannot write ${tomlPath}: ${(err as Error).message}`);
  }
  writeStderr(`postern import: wrote ${tomlPath}: ${result.parameters} parameters, ${result.services} service(s)${refused.length ? `, ${refused.length} setting(s) commented out` : ""}\n`);
  if (!commandLine) return 0;
  if (!opts.rebuild) {
    writeStderr(`postern import: build the table indexes with: ${commandLine}\n`);
    return 0;
  }
  for (const c of commands) {
    const proc = Bun.spawn([process.execPath, ...c], { stdin: "ignore", stdout: "inherit", stderr: "inherit", argv0: process.execPath, env: { ...process.env, BUN_BE_BUN: undefined } });
    const code = await proc.exited;
    if (code !== 0) {
      writeStderr(`postern import: ${c[0]} exited with status ${code}\n`);
      return code > 0 && code < 256 ? code : EX_SOFTWARE;
    }
  }
  writeStderr(`postern import: table indexes built: ${[...result.postmap, ...result.postalias].join(" ")}\n`);
  return 0;
}
