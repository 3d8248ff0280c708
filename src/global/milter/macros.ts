/**
 * Milter macros: which ones each stage sends (Postfix's milter_*_macros,
 * or the lists a milter asked for in its negotiation) and where their
 * values come from (a lookup the caller supplies: smtpd's session, or
 * cleanup's local submission), with milter_macro_defaults for names that
 * have no value.
 *
 * Pure code; runs in smtpd and cleanup as mail_owner. Values reach a milter
 * only; a milter cannot set them.
 */
import type { Config } from "../config/config.ts";
import { SMFIC, SMFIM } from "./protocol.ts";

/** The stages that send macros, with their parameter and the command they go with. */
export const MACRO_STAGES = [
  { param: "milter_connect_macros", command: SMFIC.CONNECT, stage: SMFIM.CONNECT },
  { param: "milter_helo_macros", command: SMFIC.HELO, stage: SMFIM.HELO },
  { param: "milter_mail_macros", command: SMFIC.MAIL, stage: SMFIM.ENVFROM },
  { param: "milter_rcpt_macros", command: SMFIC.RCPT, stage: SMFIM.ENVRCPT },
  { param: "milter_data_macros", command: SMFIC.DATA, stage: SMFIM.DATA },
  { param: "milter_end_of_header_macros", command: SMFIC.EOH, stage: SMFIM.EOH },
  { param: "milter_end_of_data_macros", command: SMFIC.BODYEOB, stage: SMFIM.EOM },
  { param: "milter_unknown_command_macros", command: SMFIC.UNKNOWN, stage: undefined },
] as const;

/** Macro names per command code (SMFIC_*). */
export type StageMacros = ReadonlyMap<string, readonly string[]>;

export function stageMacrosFromConfig(config: Config): StageMacros {
  const out = new Map<string, string[]>();
  for (const s of MACRO_STAGES) out.set(s.command, config.list(s.param));
  return out;
}

/** The lists a milter asked for in its negotiation replace ours for those stages. */
export function withNegotiated(base: StageMacros, asked: ReadonlyMap<number, string[]>): StageMacros {
  if (asked.size === 0) return base;
  const out = new Map(base);
  for (const s of MACRO_STAGES) {
    if (s.stage !== undefined && asked.has(s.stage)) out.set(s.command, asked.get(s.stage)!);
  }
  return out;
}

/** milter_macro_defaults: "name=value" words. */
export function macroDefaults(config: Config): Map<string, string> {
  const out = new Map<string, string>();
  for (const word of config.list("milter_macro_defaults")) {
    const eq = word.indexOf("=");
    if (eq > 0) out.set(word.slice(0, eq), word.slice(eq + 1));
  }
  return out;
}

/** Looks a macro up by its name with the braces removed ("j", "daemon_name"); undefined: not defined now. */
export type MacroLookup = (name: string) => string | undefined;

/** The name/value pairs to send for `names`, skipping those without a value (as Postfix does). */
export function macroValues(names: readonly string[], lookup: MacroLookup, defaults: ReadonlyMap<string, string>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const name of names) {
    const bare = name.replace(/^\{(.*)\}$/, "$1");
    const value = lookup(bare) ?? defaults.get(name) ?? defaults.get(bare);
    // values are NUL-terminated on the wire: a NUL inside would shift every later field
    if (value !== undefined) out.push([name, value.replace(/\0/g, "")]);
  }
  return out;
}
