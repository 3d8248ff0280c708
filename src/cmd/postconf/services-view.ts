/**
 * How postconf shows services: `services.NAME.ATTR = value`, the listen
 * addresses as configured, the role, the process limit, and each parameter
 * override (built-in ones included); for a pipe service its role, argv,
 * user, flags and size.
 */
import type { Config } from "../../global/config/config.ts";
import { BUILTIN_SERVICES, type ServiceDef } from "../../global/config/services.ts";

export function describeService(config: Config, svc: ServiceDef): Array<[string, string]> {
  // a pipe service listens on nothing: its rows are pipe(8)'s attributes
  if (svc.role === "pipe") {
    const p = svc.pipe;
    return [
      ["role", svc.role],
      ["enable", svc.enabled ? "yes" : "no"],
      ["argv", p ? p.argv.join(" ") : ""],
      ["user", p?.user ?? ""],
      ["flags", p?.flags ?? ""],
      ["size", String(p?.size ?? 0)],
    ];
  }
  const rows: Array<[string, string]> = [
    ["listen", svc.listen.join(", ")],
    ["role", svc.role],
    ["process_limit", svc.processLimit === undefined ? config.raw("default_process_limit") ?? "" : String(svc.processLimit)],
    ["enable", svc.enabled ? "yes" : "no"],
  ];
  for (const [k, v] of svc.overrides) rows.push([k, v.text]);
  return rows;
}

/** The value of `services.NAME.ATTR`, or undefined when no such service or attribute exists. */
export function serviceValue(config: Config, dotted: string, defaults: boolean): string | undefined {
  const [, name, attr] = dotted.split(".");
  if (!name) return undefined;
  if (defaults) {
    const b = BUILTIN_SERVICES[name];
    if (!b) return undefined;
    const rows: Record<string, string> = { listen: b.listen.join(", "), role: b.role, process_limit: config.defaultText("default_process_limit") ?? "", enable: b.enabled ? "yes" : "no", ...b.overrides };
    return attr ? rows[attr] : undefined;
  }
  const svc = config.services().find((s) => s.name === name);
  if (!svc) return undefined;
  if (!attr) return undefined;
  return describeService(config, svc).find(([k]) => k === attr)?.[1];
}
