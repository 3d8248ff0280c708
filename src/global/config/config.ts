/**
 * The configuration every role and command reads: postern.toml's parameters
 * over the registry's defaults, expanded lazily with Postfix's `$name` rules,
 * read through typed getters that report bad values with file and line.
 *
 * A value is checked when it is read, so a command that never reads a broken
 * parameter still works; the daemon and `postern check` call validate().
 */
import { parseBoolean, parseInteger, parseTime } from "../../util/duration.ts";
import { Expander, ExpansionError } from "./expand.ts";
import { paramDef, paramRegistry } from "./registry.ts";
import { ConfigError, emptyConfigSource, readConfigSource, type ConfigSource } from "./source.ts";
import { splitList, tomlValueToText } from "./value-text.ts";
import { parseServices, pipeTransportParamNames, type ServiceDef } from "./services.ts";
import { pipeServiceProblems } from "./pipe-checks.ts";
import { unsupportedSettings } from "./support.ts";
import { postfixOnlyDefault } from "./postfix-params.ts";

interface SetValue {
  text: string;
  line?: number;
  /** Set in postern.toml: its line is found in the file's layout when a message needs it. */
  fromFile?: boolean;
}

/** Line numbers of keys and tables, from the file's layout, computed on the first question. */
class LineIndex {
  #map: Map<string, number> | undefined;
  constructor(private readonly source: ConfigSource) {}
  get(key: string): number | undefined {
    if (!this.#map) {
      this.#map = new Map();
      for (const t of this.source.layout.tables) if (!this.#map.has(t.name)) this.#map.set(t.name, t.line);
      for (const e of this.source.layout.entries) this.#map.set(e.path, e.startLine);
    }
    return this.#map.get(key);
  }
}

export class Config {
  /** Values set in the file (or by overrides), as Postfix text. */
  readonly #set = new Map<string, SetValue>();
  readonly #problems: ConfigError[] = [];
  #services: ServiceDef[] | undefined;
  #serviceProblems: ConfigError[] = [];
  readonly #lines: LineIndex;
  #expander: Expander;
  #defaultCache = new Map<string, string>();
  /** Expanded values already asked for: a Config never changes once made (withOverrides makes a new one). */
  readonly #strCache = new Map<string, string>();
  /** The same for lists, split once (each caller gets its own copy). */
  readonly #listCache = new Map<string, readonly string[]>();
  #onUndefined: ((name: string) => void) | undefined;

  constructor(readonly source: ConfigSource) {
    this.#lines = new LineIndex(source);
    for (const [name, value] of Object.entries(source.document)) {
      if (name === "services") continue;
      const text = tomlValueToText(value);
      if (text === undefined) {
        this.#problems.push(new ConfigError(`${name}: a parameter value must be a string, number, boolean or array`, source.path, this.#lines.get(name)));
        continue;
      }
      this.#set.set(name, { text, fromFile: true });
    }
    this.#expander = new Expander(
      (n) => this.raw(n),
      (n) => this.#onUndefined?.(n),
    );
  }

  /** Calls `report` for each `$name` that expands to nothing because nobody defines it. */
  onUndefinedName(report: (name: string) => void): void {
    this.#onUndefined = report;
    // values expanded before now were expanded without the report
    this.#strCache.clear();
    this.#listCache.clear();
  }

  get path(): string {
    return this.source.path;
  }

  /** Postfix's `-o name=value` or a service's overrides: a new view with these values set. */
  withOverrides(overrides: ReadonlyMap<string, SetValue> | Record<string, string>): Config {
    const c = new Config(this.source);
    for (const [k, v] of this.#set) c.#set.set(k, v);
    c.#onUndefined = this.#onUndefined;
    const entries = overrides instanceof Map ? [...overrides] : Object.entries(overrides).map(([k, v]) => [k, { text: v }] as const);
    for (const [k, v] of entries) c.#set.set(k, v as SetValue);
    return c;
  }

  /** Names set in the file, sorted (postconf -n). */
  setNames(): string[] {
    return [...this.#set.keys()].sort();
  }

  isSet(name: string): boolean {
    return this.#set.has(name);
  }

  lineOf(name: string): number | undefined {
    const set = this.#set.get(name);
    if (!set) return undefined;
    return set.line ?? (set.fromFile ? this.#lines.get(name) : undefined);
  }

  /** The unexpanded text: the file's value, else the default; undefined for unknown names. */
  raw(name: string): string | undefined {
    const set = this.#set.get(name);
    if (set) return set.text;
    // config_directory is where the file was found, whatever the default says
    if (name === "config_directory") return this.source.directory;
    return this.defaultText(name);
  }

  /** The registry default, computed defaults evaluated against this configuration. */
  defaultText(name: string): string | undefined {
    const def = paramDef(name);
    if (!def) return undefined;
    if (typeof def.default === "string") return def.default;
    let v = this.#defaultCache.get(name);
    if (v === undefined) {
      v = def.default({ expanded: (n) => this.str(n) });
      this.#defaultCache.set(name, v);
    }
    return v;
  }

  #fail(name: string, message: string): never {
    // A value from the file names the file; a default or a -o override has no line to show.
    const line = this.lineOf(name);
    throw new ConfigError(`${name}: ${message}`, line !== undefined ? this.source.path : undefined, line);
  }

  /**
   * The expanded value; "" for names nobody defined. Raw parameters come back unexpanded. Remembered per
   * name (the daemons ask for the same parameters for every message: issue 16's profile found the
   * expansion at 6-8 % of smtpd's CPU); a value whose expansion fails is not, so it fails each time.
   */
  str(name: string): string {
    const known = this.#strCache.get(name);
    if (known !== undefined) return known;
    const value = this.#expandedValue(name);
    this.#strCache.set(name, value);
    return value;
  }

  #expandedValue(name: string): string {
    if (paramDef(name)?.raw) return this.raw(name) ?? "";
    try {
      return this.#expander.expandParam(name) ?? "";
    } catch (err) {
      if (err instanceof ExpansionError) this.#fail(name, err.message);
      throw err;
    }
  }

  /** Expands arbitrary text (for values that embed $name, e.g. in tables). */
  expand(text: string): string {
    try {
      return this.#expander.expand(text);
    } catch (err) {
      if (err instanceof ExpansionError) throw new ConfigError(err.message);
      throw err;
    }
  }

  int(name: string): number {
    const v = this.str(name);
    const n = parseInteger(v);
    if (n === undefined) this.#fail(name, `invalid integer value "${v}"`);
    return n;
  }

  bool(name: string): boolean {
    const v = this.str(name);
    const b = parseBoolean(v);
    if (b === undefined) this.#fail(name, `invalid boolean value "${v}" (use yes or no)`);
    return b;
  }

  /** Seconds. */
  time(name: string): number {
    const v = this.str(name);
    const s = parseTime(v, paramDef(name)?.unit ?? "s");
    if (s === undefined) this.#fail(name, `invalid time value "${v}" (a number with an optional unit s, m, h, d or w)`);
    return s;
  }

  list(name: string): string[] {
    let known = this.#listCache.get(name);
    if (known === undefined) {
      known = splitList(this.str(name));
      this.#listCache.set(name, known);
    }
    return known.slice();
  }

  /** The services (parsed on first use: commands that never ask pay nothing). */
  services(): readonly ServiceDef[] {
    if (!this.#services) {
      const parsed = parseServices(this.source.document.services, this.source.path, this.#lines);
      this.#services = parsed.services;
      this.#serviceProblems = parsed.problems;
    }
    return this.#services;
  }

  /** Every problem in the file: syntax-level ones and values that do not fit their type. */
  validate(): ConfigError[] {
    const services = this.services();
    const problems = [...this.#problems, ...this.#serviceProblems];
    for (const name of this.#set.keys()) {
      const def = paramDef(name);
      if (!def) continue;
      try {
        this.#check(name, def.type);
      } catch (err) {
        if (err instanceof ConfigError) problems.push(err);
        else throw err;
      }
    }
    for (const svc of services) {
      for (const [name, v] of svc.overrides) {
        const def = paramDef(name);
        if (!def) continue;
        try {
          this.withOverrides(new Map([[name, v]])).#check(name, def.type);
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
          // name the override as it is written: services.smtp.NAME
          problems.push(new ConfigError(`services.${svc.name}.${err.detail}`, this.source.path, v.line));
        }
      }
    }
    // settings that ask for something postern does not do (support.ts)
    problems.push(...unsupportedSettings(this));
    // what pipe(8) would refuse at its start: a user= that is nobody, a bad NAME_time_limit
    problems.push(...pipeServiceProblems(this));
    return problems;
  }

  #check(name: string, type: string): void {
    if (type === "int") this.int(name);
    else if (type === "bool") this.bool(name);
    else if (type === "time") this.time(name);
    else this.str(name);
  }

  /** Names set in the file that no registry entry defines (postconf's "unknown parameter"). */
  unknownNames(): string[] {
    const known = paramRegistry();
    // Postfix's own parameters are judged by support.ts (refused, or harmless as set), not unknown
    let classes: string[] = [];
    try {
      classes = this.list("smtpd_restriction_classes");
    } catch {
      // reported by validate()
    }
    // a pipe service's per-transport settings (<name>_destination_recipient_limit, ...) are read by name
    const perTransport = pipeTransportParamNames(this.services());
    const out = this.setNames().filter((n) => !known.has(n) && postfixOnlyDefault(n) === undefined && !classes.includes(n) && !perTransport.has(n));
    for (const svc of this.services()) for (const n of svc.overrides.keys()) if (!known.has(n) && !svc.builtinOverrides.has(n)) out.push(`services.${svc.name}.${n}`);
    return out;
  }
}

/** Built-in defaults only, as if no file existed (postconf -d). */
export function defaultsOnlyConfig(): Config {
  return new Config(emptyConfigSource());
}

/** Reads the configuration; `explicit` is a -c/-C argument. */
export function loadConfig(explicit?: string): Config {
  return new Config(readConfigSource(explicit));
}
