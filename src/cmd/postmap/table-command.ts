/**
 * The engine behind postmap(1) and postalias(1): the two commands differ
 * only in the source format (postmap-format.ts or alias-format.ts), the
 * output line (`key<TAB>value` or `key:<TAB>value`) and postalias's "@"
 * entry. Modes: build each `[type:]file` (the default), `-i` add entries
 * from standard input, `-q key` / `-q -` query, `-d key` / `-d -` delete,
 * `-s` list. Exit status as Postfix's: 0 on success or when a key was found,
 * 1 when no key was found and on any fatal error.
 *
 * Runs as the invoking user; as root a build takes the source owner's ids
 * (index-build.ts). Standard input and the source files are untrusted.
 */
import { loadConfig, type Config } from "../../global/config/config.ts";
import { setupLog } from "../../global/system/log-setup.ts";
import { INDEXED_TYPES, openTableUncached, splitSpec } from "../../global/tables/open-table.ts";
import type { SourceEntry } from "../../global/tables/postmap-format.ts";
import { TableError, type Table } from "../../global/tables/table.ts";
import { getopt, GetoptError } from "../../util/getopt.ts";
import { log } from "../../util/log.ts";
import { ExitError } from "../../util/sysexits.ts";
import { addToIndex, asSourceOwner, buildIndex, deleteFromIndex, readSource, uniqueEntries, type BuildOptions } from "./index-build.ts";
import { messageKeys } from "./message-keys.ts";
import { writeStdout, writeStderr } from "../../util/stdio.ts";

export interface SourceFormat {
  command: "postmap" | "postalias";
  optionSpec: string;
  usage: string;
  parse(text: string, warn: (line: number | undefined, message: string) => void): SourceEntry[];
  formatLine(key: string, value: string): string;
  /** An entry every index of this format ends with (postalias's "@" for Sendmail). */
  sentinel?: [string, string];
}

interface Flags {
  configDir?: string;
  query?: string;
  remove?: string;
  dump: boolean;
  incremental: boolean;
  base64: boolean;
  headerKeys: boolean;
  bodyKeys: boolean;
  build: BuildOptions;
}

function parseFlags(format: SourceFormat, args: string[]): { flags: Flags; operands: string[] } {
  let parsed;
  try {
    parsed = getopt(args, format.optionSpec);
  } catch (err) {
    if (err instanceof GetoptError) {
      writeStderr(`${format.command}: ${err.message}\n`);
      throw new ExitError(1, format.usage);
    }
    throw err;
  }
  const flags: Flags = {
    dump: false,
    incremental: false,
    base64: false,
    headerKeys: false,
    bodyKeys: false,
    build: { keepRoot: false, defaultMode: false, fold: true, duplicates: "warn" },
  };
  let modes = 0;
  for (const [opt, arg] of parsed.options) {
    switch (opt) {
      case "c": flags.configDir = arg; break;
      case "q": flags.query = arg; modes++; break;
      case "d": flags.remove = arg; modes++; break;
      case "s": flags.dump = true; modes++; break;
      case "i": flags.incremental = true; break;
      case "f": flags.build.fold = false; break;
      case "o": flags.build.keepRoot = true; break;
      case "p": flags.build.defaultMode = true; break;
      case "r": flags.build.duplicates = "replace"; break;
      case "w": flags.build.duplicates = "ignore"; break;
      case "F": flags.base64 = true; break;
      case "h": flags.headerKeys = true; break;
      case "b": flags.bodyKeys = true; break;
      case "m": throw new ExitError(1, "-m (MIME parsing for -h and -b) is not supported by postern");
      // null-terminated keys, UTF-8 checks and verbosity change nothing for a SQLite index
      case "n": case "N": case "u": case "U": case "v": break;
    }
  }
  if (modes > 1) throw new ExitError(1, "specify only one of -s -q or -d");
  if ((flags.headerKeys || flags.bodyKeys) && flags.query !== "-") throw new ExitError(1, "-h and -b work only with -q -");
  if (!parsed.operands.length) throw new ExitError(1, format.usage);
  return { flags, operands: parsed.operands };
}

/** `[type:]file` with default_database_type for a bare file name. */
export function fullSpec(operand: string, config: Config): { spec: string; type: string; name: string } {
  const { type, name } = splitSpec(operand);
  if (type !== undefined) return { spec: operand, type, name };
  const dflt = config.str("default_database_type").toLowerCase() || "hash";
  return { spec: `${dflt}:${operand}`, type: dflt, name: operand };
}

async function readStdin(): Promise<string> {
  return await new Response(Bun.stdin.stream()).text();
}

function stdinKeys(text: string): string[] {
  const lines = text.split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

class Output {
  #buf: string[] = [];
  #size = 0;
  line(text: string): void {
    this.#buf.push(text, "\n");
    this.#size += text.length + 1;
    if (this.#size > 65536) this.flush();
  }
  flush(): void {
    if (this.#buf.length) writeStdout(this.#buf.join(""));
    this.#buf = [];
    this.#size = 0;
  }
}

function decodeValue(value: string, base64: boolean, spec: string): string {
  if (!base64) return value;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw new ExitError(1, `table ${spec}: malformed BASE64 value: ${value}`);
  return Buffer.from(value, "base64").toString("utf8");
}

/** A table problem ends the command: problems opening name the file themselves, lookup failures name the table. */
function tableFailure(err: unknown): never {
  if (err instanceof TableError) throw new ExitError(1, err.detail.startsWith("open ") ? err.detail : `table ${err.message}`);
  throw err;
}

function openOrFail(spec: string, config: Config, options: { fold: boolean }): Table {
  try {
    return openTableUncached(spec, config, options);
  } catch (err) {
    if (err instanceof TableError) throw new ExitError(1, err.detail);
    throw err;
  }
}

async function query(format: SourceFormat, flags: Flags, specs: string[], config: Config): Promise<number> {
  const tables: Table[] = [];
  try {
    for (const s of specs) tables.push(openOrFail(s, config, { fold: flags.build.fold }));
    const out = new Output();
    const find = async (key: string): Promise<[string, string] | undefined> => {
      for (let i = 0; i < tables.length; i++) {
        const v = await tables[i]!.lookup(key);
        if (v !== undefined) return [specs[i]!, v];
      }
      return undefined;
    };
    let found = false;
    if (flags.query === "-") {
      const text = await readStdin();
      const keys = flags.headerKeys || flags.bodyKeys ? messageKeys(text, flags.headerKeys, flags.bodyKeys) : stdinKeys(text);
      for (const key of keys) {
        const hit = await find(key);
        if (!hit) continue;
        found = true;
        out.line(format.formatLine(key, decodeValue(hit[1], flags.base64, hit[0])));
      }
    } else {
      const hit = await find(flags.query!);
      if (hit) {
        found = true;
        out.line(decodeValue(hit[1], flags.base64, hit[0]));
      }
    }
    out.flush();
    return found ? 0 : 1;
  } catch (err) {
    return tableFailure(err);
  } finally {
    for (const t of tables) t.close();
  }
}

async function dump(format: SourceFormat, flags: Flags, specs: string[], config: Config): Promise<number> {
  const out = new Output();
  for (const spec of specs) {
    let table: Table | undefined;
    try {
      table = openOrFail(spec, config, { fold: flags.build.fold });
      if (!table.entries) throw new ExitError(1, `table ${spec}: sequence operation is not supported`);
      for await (const [k, v] of table.entries()) out.line(format.formatLine(k, decodeValue(v, flags.base64, spec)));
    } catch (err) {
      out.flush();
      tableFailure(err);
    } finally {
      table?.close();
    }
  }
  out.flush();
  return 0;
}

function requireIndexed(type: string, what: string): void {
  if (!INDEXED_TYPES.has(type)) throw new ExitError(1, `unsupported dictionary type: ${type} does not support ${what}.`);
}

async function remove(flags: Flags, specs: Array<{ spec: string; type: string; name: string }>): Promise<number> {
  const keys = flags.remove === "-" ? stdinKeys(await readStdin()) : [flags.remove!];
  let found = 0;
  for (const { type, name } of specs) {
    requireIndexed(type, "deletion");
    found += asSourceOwner(name, flags.build, () => deleteFromIndex(name, keys, flags.build));
  }
  return found ? 0 : 1;
}

/** -F: a value names files whose contents, joined by newlines, are stored in base64. */
function base64Values(entries: SourceEntry[]): SourceEntry[] {
  return entries.map((e) => {
    const files = e.value.split(/[\s,]+/).filter(Boolean);
    const text = files.map((f) => readSource(f)).join("\n");
    return { ...e, value: Buffer.from(text).toString("base64") };
  });
}

async function build(format: SourceFormat, flags: Flags, specs: Array<{ spec: string; type: string; name: string }>): Promise<number> {
  const stdinText = flags.incremental ? await readStdin() : undefined;
  for (const { type, name } of specs) {
    requireIndexed(type, "bulk-mode creation");
    asSourceOwner(name, flags.build, () => {
      if (stdinText !== undefined) {
        let entries = format.parse(stdinText, (line, m) => log.warn(line === undefined ? `stdin: ${m}` : `stdin, line ${line}: ${m}`));
        if (flags.base64) entries = base64Values(entries);
        addToIndex(name, entries, flags.build, format.sentinel);
        return;
      }
      buildFromSource(format, name, flags.build, flags.base64);
    });
  }
  return 0;
}

/** Reads source file `name` in `format` and writes its index (the caller has set the ids to write with). */
export function buildFromSource(format: SourceFormat, name: string, opts: BuildOptions, base64 = false): void {
  const text = readSource(name);
  let entries = format.parse(text, (line, m) => log.warn(line === undefined ? `${name}: ${m}` : `${name}, line ${line}: ${m}`));
  if (base64) entries = base64Values(entries);
  const map = uniqueEntries(entries, opts, name);
  if (format.sentinel) map.set(format.sentinel[0], format.sentinel[1]);
  buildIndex(name, map, opts);
}

export async function runTableCommand(format: SourceFormat, args: string[]): Promise<number> {
  const { flags, operands } = parseFlags(format, args);
  const config = loadConfig(flags.configDir);
  await setupLog(config, { role: format.command, stderrProgram: format.command });
  const specs = operands.map((o) => fullSpec(o, config));
  try {
    if (flags.query !== undefined) return await query(format, flags, specs.map((s) => s.spec), config);
    if (flags.dump) return await dump(format, flags, specs.map((s) => s.spec), config);
    if (flags.remove !== undefined) return await remove(flags, specs);
    return await build(format, flags, specs);
  } finally {
    log.close();
  }
}
