/**
 * The parameter registry: every parameter postern knows, by name.
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

let registry: Map<string, ParamDef> | undefined;

export function paramRegistry(): ReadonlyMap<string, ParamDef> {
  if (!registry) {
    registry = new Map();
    for (const def of [...basicParams, ...queueParams, ...deliveryParams, ...smtpdParams, ...smtpdServerParams, ...qmgrParams, ...tableParams, ...bounceParams, ...smtpParams, ...dnsParams, ...mtaStsParams, ...checksParams, ...policyParams, ...hostingParams, ...milterParams, ...dkimParams, ...processModelParams]) {
      if (registry.has(def.name)) throw new Error(`parameter defined twice: ${def.name}`);
      registry.set(def.name, def);
    }
  }
  return registry;
}

export function paramDef(name: string): ParamDef | undefined {
  return paramRegistry().get(name);
}
