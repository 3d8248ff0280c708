/**
 * postconf: show and edit postern.toml as Postfix's postconf(1) shows and
 * edits main.cf. Parameters print as `name = value`; services are reached
 * with dotted names (`services.smtp.listen`); `-e`, `-X` and `-#` edit the
 * file text in place.
 *
 * Runs as the invoking user; reads only the configuration file.
 */
import { getopt, GetoptError } from "../../util/getopt.ts";
import { ExitError, EX_CANTCREAT, EX_USAGE } from "../../util/sysexits.ts";
import { replaceFileDurably } from "../../util/durable-file.ts";
import { log } from "../../util/log.ts";
import { defaultsOnlyConfig, loadConfig, type Config } from "../../global/config/config.ts";
import { paramRegistry } from "../../global/config/registry.ts";
import { postfixOnlyDefault } from "../../global/config/postfix-params.ts";
import { commentOutValue, removeValue, setValue } from "../../global/config/edit.ts";
import { statSync } from "node:fs";
import { describeService, serviceValue } from "./services-view.ts";
import { writeStdout, writeStderr } from "../../util/stdio.ts";

const USAGE =
  "usage: postconf [-c config_dir] [-d (defaults)] [-e (edit)] [-h (no names)] [-H (no values)] [-M (services)] [-P (service overrides)] [-n (non-default)] [-o name=value] [-x (expand)] [-X (exclude)] [-# (comment-out)] [name...]";

interface Flags {
  configDir?: string;
  defaults: boolean;
  edit: boolean;
  remove: boolean;
  comment: boolean;
  noNames: boolean;
  noValues: boolean;
  nonDefault: boolean;
  expand: boolean;
  services: boolean;
  /** -P: each service's parameter overrides, as service/type/name = value. */
  serviceOverrides: boolean;
  overrides: Record<string, string>;
}

function parseFlags(args: string[]): { flags: Flags; names: string[] } {
  const flags: Flags = {
    defaults: false, edit: false, remove: false, comment: false, noNames: false, noValues: false,
    nonDefault: false, expand: false, services: false, serviceOverrides: false, overrides: {},
  };
  let parsed;
  try {
    parsed = getopt(args, "aAbc:C:deEfFhHlmMno:pPtT:vxX#");
  } catch (err) {
    if (err instanceof GetoptError) {
      writeStderr(`postconf: ${err.message}\n`);
      throw new ExitError(EX_USAGE, USAGE);
    }
    throw err;
  }
  for (const [opt, arg] of parsed.options) {
    switch (opt) {
      case "c": flags.configDir = arg; break;
      case "d": flags.defaults = true; break;
      case "e": flags.edit = true; break;
      case "X": flags.remove = true; break;
      case "#": flags.comment = true; break;
      case "h": flags.noNames = true; break;
      case "H": flags.noValues = true; break;
      case "n": flags.nonDefault = true; break;
      case "x": flags.expand = true; break;
      case "M": flags.services = true; break;
      case "P": flags.serviceOverrides = true; break;
      case "o": {
        const eq = arg!.indexOf("=");
        if (eq < 0) throw new ExitError(EX_USAGE, `-o: missing '=' in "${arg}"`);
        flags.overrides[arg!.slice(0, eq).trim()] = arg!.slice(eq + 1).trim();
        break;
      }
      case "f": case "p": case "v": break; // folding, main.cf mode and verbosity change nothing here
      default:
        throw new ExitError(EX_USAGE, `option -${opt} is not supported by postern's postconf`);
    }
  }
  const modes = [flags.edit, flags.remove, flags.comment].filter(Boolean).length;
  if (modes > 1) throw new ExitError(EX_USAGE, "specify only one of -e, -X and -#");
  if (modes && (flags.defaults || flags.nonDefault)) throw new ExitError(EX_USAGE, "-e, -X and -# cannot be combined with -d or -n");
  // as Postfix's: defaults are the built-in values, which an override cannot change
  if (flags.defaults && Object.keys(flags.overrides).length) throw new ExitError(EX_USAGE, "specify one of -d and -o");
  if (flags.noNames && flags.noValues) throw new ExitError(EX_USAGE, "specify one of -h and -H");
  return { flags, names: parsed.operands };
}

function line(flags: Flags, name: string, rawValue: string): string {
  // as Postfix's postconf: runs of white space (a multi-line TOML string too) print as one space
  const value = rawValue.split(/[ \t\r\n]+/).filter(Boolean).join(" ");
  if (flags.noNames) return value;
  if (flags.noValues) return name;
  return value === "" ? `${name} =` : `${name} = ${value}`;
}

export async function main(args: string[]): Promise<number> {
  const { flags, names } = parseFlags(args);
  if (flags.edit || flags.remove || flags.comment) return editFile(loadConfig(flags.configDir), flags, names);
  // -d shows the built-in defaults: computed ones (mydomain, mynetworks) and -dx
  // expansions must not see the file's values, as with Postfix's postconf -d.
  let config = flags.defaults ? defaultsOnlyConfig() : loadConfig(flags.configDir);
  if (Object.keys(flags.overrides).length) config = config.withOverrides(flags.overrides);
  if (flags.expand && !flags.defaults) {
    const reported = new Set<string>();
    config.onUndefinedName((name) => {
      if (reported.has(name)) return;
      reported.add(name);
      log.warn(`${config.path}: undefined parameter: ${name}`);
    });
  }
  if (flags.services) return showServices(config, flags, names);
  if (flags.serviceOverrides) return showServiceOverrides(config, flags, names);
  return showParams(config, flags, names);
}

function valueOf(config: Config, flags: Flags, name: string): string | undefined {
  const raw = config.raw(name);
  if (raw === undefined) return undefined;
  return flags.expand ? config.str(name) : raw;
}

function showParams(config: Config, flags: Flags, names: string[]): number {
  const out: string[] = [];
  const registry = paramRegistry();
  if (names.length === 0) {
    const list = flags.nonDefault ? config.setNames() : [...registry.keys()].sort();
    // -n shows what the file sets, Postfix's own parameters included (an imported main.cf's biff = no)
    for (const name of list) if (registry.has(name) || (flags.nonDefault && postfixOnlyDefault(name) !== undefined)) out.push(line(flags, name, valueOf(config, flags, name) ?? ""));
  } else {
    for (const name of names) {
      if (name.startsWith("services.")) {
        const v = serviceValue(config, name, flags.defaults);
        if (v === undefined) log.warn(`${name}: unknown service attribute`);
        else out.push(line(flags, name, v));
        continue;
      }
      if (!registry.has(name)) {
        // as Postfix's: a name nobody defines is not shown, even when the file sets it
        log.warn(`${name}: unknown parameter`);
        continue;
      }
      if (flags.nonDefault && !config.isSet(name)) continue;
      out.push(line(flags, name, valueOf(config, flags, name) ?? ""));
    }
  }
  if (out.length) writeStdout(out.join("\n") + "\n");
  if (!flags.defaults) {
    // Postfix's own parameters are Postfix's business to name; check judges them (support.ts)
    for (const name of config.setNames()) if (!registry.has(name) && postfixOnlyDefault(name) === undefined) log.warn(`${config.path}: unused parameter: ${name}=${config.raw(name)}`);
  }
  return 0;
}

function showServices(config: Config, flags: Flags, names: string[]): number {
  const wanted = names.map((n) => n.replace(/^services\./, ""));
  const out: string[] = [];
  for (const svc of config.services()) {
    // a service the file configures shows even when it turns it off (an imported master.cf without smtp)
    if (wanted.length ? !wanted.includes(svc.name) : !svc.enabled && !svc.configured) continue;
    for (const [k, v] of describeService(config, svc)) out.push(line(flags, `services.${svc.name}.${k}`, v));
  }
  for (const n of wanted) if (!config.services().some((s) => s.name === n)) log.warn(`services.${n}: unknown service`);
  if (out.length) writeStdout(out.join("\n") + "\n");
  return 0;
}

/** Postfix's postconf -P: `service/type/parameter = value`, for master.cf's -o (here: the service tables' overrides). */
function showServiceOverrides(config: Config, flags: Flags, names: string[]): number {
  const out: string[] = [];
  for (const svc of config.services()) {
    if (!svc.enabled && !svc.configured) continue;
    for (const [k, v] of svc.overrides) {
      const full = `${svc.name}/inet/${k}`;
      if (names.length && !names.some((n) => full === n || full.startsWith(`${n.replace(/\/$/, "")}/`))) continue;
      out.push(line(flags, full, v.text));
    }
  }
  if (out.length) writeStdout(out.join("\n") + "\n");
  return 0;
}

function editFile(config: Config, flags: Flags, args: string[]): number {
  const source = config.source;
  let text = source.text;
  for (const arg of args) {
    if (flags.edit) {
      const eq = arg.indexOf("=");
      if (eq < 0) throw new ExitError(EX_USAGE, `missing '=' after attribute name: "${arg}"`);
      const name = arg.slice(0, eq).trim();
      if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new ExitError(EX_USAGE, `invalid parameter name: "${name}"`);
      if (!name.startsWith("services.") && !paramRegistry().has(name)) log.warn(`${name}: unknown parameter`);
      text = setValue(text, name, arg.slice(eq + 1).trim());
    } else {
      const name = arg.trim();
      text = (flags.remove ? removeValue(text, name) : commentOutValue(text, name)) ?? text;
    }
  }
  if (text === source.text) return 0;
  let mode = 0o644;
  try {
    mode = statSync(source.path).mode & 0o7777;
  } catch {
    // a new file
  }
  try {
    replaceFileDurably(source.path, text, mode);
  } catch (err) {
    throw new ExitError(EX_CANTCREAT, `cannot update ${source.path}: ${(err as Error).message}`);
  }
  return 0;
}
