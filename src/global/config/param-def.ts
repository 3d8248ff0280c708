/**
 * The shape of one parameter definition. Every parameter postern knows is
 * defined once, in params/*.ts, and that definition feeds validation,
 * `postconf -d`, the typed getters and the unknown-name warnings.
 */
import type { CheckContext } from "./value-checks.ts";
import type { TimeUnit } from "../../util/duration.ts";

export type ParamType = "str" | "int" | "bool" | "time" | "list";

/** What a computed default may look at: other parameters, fully expanded. */
export interface DefaultContext {
  expanded(name: string): string;
}

export interface ParamDef {
  name: string;
  type: ParamType;
  /** For "time": the unit of a bare number. */
  unit?: TimeUnit;
  /** Postfix-style text, or a function for values computed from the host. */
  default: string | ((ctx: DefaultContext) => string);
  /** One line for `postconf -l`-style listings and the docs. */
  doc: string;
  /** Which roles and commands read it ("all" for every one). */
  roles: readonly string[];
  /**
   * Not expanded when read (Postfix's "raw" parameters): the role that uses it
   * expands it later with names of its own, such as local(8)'s $home or $recipient.
   */
  raw?: boolean;
  /**
   * Whether postern acts on the parameter. Absent means it does, for every
   * value the type accepts, and test/unit/global/config/param-support.test.ts
   * proves a reader exists in src/: a parameter added without a mark and
   * without a reader fails that test. See support.ts for how check uses it.
   */
  support?: ParamSupport;
}

/**
 * - "refuses": acted on, but some values ask for something postern lacks;
 *   `refuse` names why for such a value (undefined: fine).
 * - "unsupported": not acted on; the default, an empty value and `accept`
 *   are fine (they ask for nothing), any other value is refused.
 * - "install": only about where Postfix's own files live; any value is
 *   carried and noted, never refused.
 */
export type ParamSupport =
  | { kind: "refuses"; refuse: (value: string, context?: CheckContext) => string | undefined }
  | { kind: "unsupported"; why: string; accept?: readonly string[] }
  | { kind: "install" };

/*
 * The helpers below build and mark definitions without object spreads: every role and command
 * (sendmail too) builds the ~450 definitions at start, in the interpreter, where a spread costs
 * many times an assignment. The marking helpers change and return the fresh object p() made.
 */

/** Shorthand used by the params files: p(name, type, default, doc, roles). */
export function p(
  name: string,
  type: ParamType,
  dflt: ParamDef["default"],
  doc: string,
  roles: readonly string[],
  unit?: TimeUnit,
): ParamDef {
  const def: ParamDef = { name, type, default: dflt, doc, roles };
  if (unit) def.unit = unit;
  return def;
}

/** A parameter whose value the reading role expands itself (see ParamDef.raw). */
export function raw(def: ParamDef): ParamDef {
  def.raw = true;
  return def;
}

/** A time parameter with its default unit. */
export function t(name: string, unit: TimeUnit, dflt: string, doc: string, roles: readonly string[]): ParamDef {
  return p(name, "time", dflt, doc, roles, unit);
}

/** A parameter postern acts on, except for the values `refuse` names a reason for. */
export function refusing(def: ParamDef, refuse: (value: string, context?: CheckContext) => string | undefined): ParamDef {
  def.support = { kind: "refuses", refuse };
  return def;
}

/** A parameter postern knows but does not act on: only values that ask for nothing pass check. */
export function unsupported(def: ParamDef, why: string, accept: readonly string[] = []): ParamDef {
  def.support = { kind: "unsupported", why, accept };
  return def;
}

/** A parameter about Postfix's own installation (paths of programs, manuals): carried, never acted on. */
export function installOnly(def: ParamDef): ParamDef {
  def.support = { kind: "install" };
  return def;
}
