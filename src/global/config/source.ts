/**
 * Finds and reads postern.toml: `-c DIR` (or sendmail's `-C`), else
 * $MAIL_CONFIG, else the built-in config_directory. A path that names the
 * file itself is accepted too. A missing file is an empty configuration.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { parse as parseToml, TomlError } from "smol-toml";
import { scanLayout, type Layout } from "./toml-layout.ts";

export const CONFIG_FILE_NAME = "postern.toml";
export const DEFAULT_CONFIG_DIRECTORY = "/etc/postern";

export class ConfigError extends Error {
  constructor(
    /** The message without the file and line. */
    readonly detail: string,
    readonly file?: string,
    readonly line?: number,
  ) {
    super(file ? `${file}${line ? `, line ${line}` : ""}: ${detail}` : detail);
    this.name = "ConfigError";
  }
}

export interface ConfigSource {
  /** The directory that holds the file (config_directory). */
  directory: string;
  /** Path of postern.toml, whether or not it exists. */
  path: string;
  exists: boolean;
  text: string;
  /** The parsed document (empty when the file is missing). */
  document: Record<string, unknown>;
  /** Where each key sits; scanned on first use (only error messages and edits need it). */
  readonly layout: Layout;
}

function lazyLayout<T extends Omit<ConfigSource, "layout">>(fields: T): ConfigSource {
  let layout: Layout | undefined;
  return {
    ...fields,
    get layout() {
      return (layout ??= scanLayout(fields.text));
    },
  };
}

/** Where the configuration lives, from an explicit option, the environment, or the default. */
export function locateConfig(explicit?: string): { directory: string; path: string } {
  const given = explicit ?? process.env.MAIL_CONFIG ?? DEFAULT_CONFIG_DIRECTORY;
  const abs = resolve(given);
  let isFile = abs.endsWith(".toml");
  try {
    isFile = statSync(abs).isFile();
  } catch {
    // missing: decide by the name
  }
  return isFile ? { directory: dirname(abs), path: abs } : { directory: abs, path: join(abs, CONFIG_FILE_NAME) };
}

/** No file at all: every parameter has its default (postconf -d). */
export function emptyConfigSource(): ConfigSource {
  return lazyLayout({
    directory: DEFAULT_CONFIG_DIRECTORY,
    path: join(DEFAULT_CONFIG_DIRECTORY, CONFIG_FILE_NAME),
    exists: false,
    text: "",
    document: {},
  });
}

/**
 * Pointed at Postfix's files (`-c /etc/postfix`, `-c /etc/postfix/main.cf`), say what postern reads and
 * how to convert, instead of a TOML syntax error or, worse, silently running on the defaults.
 */
function refusePostfixFiles(directory: string, path: string): void {
  const name = basename(path);
  const convert = (dir: string) => `postern's configuration file is ${CONFIG_FILE_NAME}; convert Postfix's main.cf and master.cf with "postern import ${dir}"`;
  if (name === "main.cf" || name === "master.cf") throw new ConfigError(`this is Postfix's ${name}: ${convert(directory)}`, path);
  if (!existsSync(path) && existsSync(join(directory, "main.cf"))) throw new ConfigError(`no ${CONFIG_FILE_NAME} here, but Postfix's main.cf: ${convert(directory)}`, path);
}

/** A configuration from text (postern import checks what it is about to write); `directory` is where it would live. */
export function configSourceFromText(text: string, directory: string): ConfigSource {
  const path = join(directory, CONFIG_FILE_NAME);
  return lazyLayout({ directory, path, exists: false, text, document: parseDocument(text, path) });
}

/** Reads and parses the file; a syntax error names the file and line. */
export function readConfigSource(explicit?: string): ConfigSource {
  const { directory, path } = locateConfig(explicit);
  refusePostfixFiles(directory, path);
  let text = "";
  let exists = false;
  try {
    text = readFileSync(path, "utf8");
    exists = true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" && code !== "ENOTDIR") throw new ConfigError(`cannot read the configuration: ${(err as Error).message}`, path);
  }
  return lazyLayout({ directory, path, exists, text, document: parseDocument(text, path) });
}

function parseDocument(text: string, path: string): Record<string, unknown> {
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split("\n")[0] ?? err.message;
      throw new ConfigError(`TOML syntax error: ${first.replace(/^Invalid TOML document: /, "")}`, path, err.line);
    }
    throw err;
  }
}
