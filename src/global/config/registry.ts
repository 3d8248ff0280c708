/**
 * The parameter registry: every parameter postern knows, by name.
 *
 * Each params file is a function that builds its definitions, called on
 * first need (issue 16). paramDef() builds the files in the order below
 * until the name turns up, so a command that reads only basic and queue
 * parameters (sendmail) never builds the SMTP server's or client's hundreds
 * of definitions; a name found in no file, and paramRegistry(), build them
 * all and check that no name is defined twice.
 */
import type { ParamDef } from "./param-def.ts";
import { basicParams } from "./params/basics.ts";
import { queueParams } from "./params/queue.ts";
import { deliveryParams } from "./params/delivery.ts";
import { smtpdParams } from "./params/smtpd.ts";
import { smtpdServerParams } from "./params/smtpd-server.ts";
import { tableParams } from "./params/tables.ts";
import { qmgrParams } from "./params/qmgr.ts";
import { bounceParams } from "./params/bounce.ts";
import { dnsParams } from "./params/dns.ts";
import { mtaStsParams } from "./params/mta-sts.ts";
import { smtpParams } from "./params/smtp.ts";
import { checksParams } from "./params/checks.ts";
import { policyParams } from "./params/policy.ts";
import { hostingParams } from "./params/hosting.ts";
import { milterParams } from "./params/milter.ts";
import { dkimParams } from "./params/dkim.ts";
import { processModelParams } from "./params/process-model.ts";

/** A params file: builds its definitions when called. */
type ParamSource = () => readonly ParamDef[];

/** Lookup order: the parameters every command reads come first. */
const SOURCES: readonly ParamSource[] = [basicParams, queueParams, deliveryParams, smtpdParams, smtpdServerParams, qmgrParams, tableParams, bounceParams, smtpParams, dnsParams, mtaStsParams, checksParams, policyParams, hostingParams, milterParams, dkimParams, processModelParams];

/** The definitions of SOURCES[i], once built (each file is built once). */
const built: Array<readonly ParamDef[]> = [];
/** The definitions of the files built so far, by name, for paramDef before the full registry exists. */
const partial = new Map<string, ParamDef>();
let registry: Map<string, ParamDef> | undefined;

function buildSource(i: number): readonly ParamDef[] {
  let defs = built[i];
  if (defs === undefined) {
    defs = SOURCES[i]!();
    built[i] = defs;
  }
  return defs;
}

export function paramRegistry(): ReadonlyMap<string, ParamDef> {
  if (!registry) {
    const all = new Map<string, ParamDef>();
    for (let i = 0; i < SOURCES.length; i++) {
      for (const def of buildSource(i)) {
        if (all.has(def.name)) throw new Error(`parameter defined twice: ${def.name}`);
        all.set(def.name, def);
      }
    }
    registry = all;
  }
  return registry;
}

export function paramDef(name: string): ParamDef | undefined {
  if (registry) return registry.get(name);
  let def = partial.get(name);
  while (def === undefined && built.length < SOURCES.length) {
    for (const d of buildSource(built.length)) if (!partial.has(d.name)) partial.set(d.name, d);
    def = partial.get(name);
  }
  // not found in any file: the full registry (which also refuses a name defined twice) decides
  return def ?? paramRegistry().get(name);
}

/** How many params files are built so far, of how many (the registry's tests check its laziness). */
export function paramFilesBuilt(): { built: number; total: number } {
  return { built: built.length, total: SOURCES.length };
}
