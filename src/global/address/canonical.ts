/**
 * Address canonicalization, Postfix's trivial-rewrite "rewrite" step, on
 * internal-form addresses: what cleanup applies to the envelope and to the
 * address headers of a message before it is queued.
 *
 * The "local" context (mail submitted on this machine): a source route is
 * dropped (`@a,@b:user@c` -> `user@c`); an address without `@` becomes
 * `user@site` from `site!user` (swap_bangpath) or `user@domain` from
 * `user%domain` (allow_percent_hack); a still unqualified address gets
 * `@$myorigin` (append_at_myorigin); a domain without a dot gets
 * `.$mydomain` (append_dot_mydomain); a trailing dot of the domain goes.
 * The "remote" context only completes unqualified addresses with
 * remote_header_rewrite_domain, and nothing when that is empty.
 *
 * The empty address stays empty (it is the null sender). Pure functions of
 * their options: the caller reads the configuration.
 */
import type { Config } from "../config/config.ts";
import { splitAddress } from "./quote.ts";

export interface CanonicalOptions {
  context: "local" | "remote";
  myorigin: string;
  mydomain: string;
  appendAtMyorigin: boolean;
  appendDotMydomain: boolean;
  swapBangpath: boolean;
  allowPercentHack: boolean;
  /** remote_header_rewrite_domain: the domain for the remote context; "" means leave remote addresses alone. */
  remoteDomain: string;
}

export function canonicalOptions(config: Config, context: "local" | "remote" = "local"): CanonicalOptions {
  return {
    context,
    myorigin: config.str("myorigin"),
    mydomain: config.str("mydomain"),
    appendAtMyorigin: config.bool("append_at_myorigin"),
    appendDotMydomain: config.bool("append_dot_mydomain"),
    swapBangpath: config.bool("swap_bangpath"),
    allowPercentHack: config.bool("allow_percent_hack"),
    remoteDomain: config.str("remote_header_rewrite_domain"),
  };
}

const SOURCE_ROUTE = /^(?:@[^,:@]*,)*@[^,:@]*:/;

export function canonicalizeAddress(address: string, opts: CanonicalOptions): string {
  if (address === "") return address;
  let a = address;
  const route = SOURCE_ROUTE.exec(a);
  if (route && route[0].length < a.length) a = a.slice(route[0].length);
  if (opts.context === "remote") {
    if (!a.includes("@") && opts.remoteDomain) a = `${a}@${opts.remoteDomain}`;
    return stripTrailingDot(a);
  }
  if (!a.includes("@")) {
    const bang = a.indexOf("!");
    const percent = a.lastIndexOf("%");
    if (opts.swapBangpath && bang > 0 && bang < a.length - 1) {
      a = `${a.slice(bang + 1)}@${a.slice(0, bang)}`;
    } else if (opts.allowPercentHack && percent > 0 && percent < a.length - 1) {
      a = `${a.slice(0, percent)}@${a.slice(percent + 1)}`;
    }
  }
  if (!a.includes("@") && opts.appendAtMyorigin && opts.myorigin) a = `${a}@${opts.myorigin}`;
  const { local, domain } = splitAddress(a);
  if (a.includes("@") && opts.appendDotMydomain && opts.mydomain && domain && !domain.includes(".") && !domain.startsWith("[")) {
    a = `${local}@${domain}.${opts.mydomain}`;
  }
  return stripTrailingDot(a);
}

function stripTrailingDot(a: string): string {
  const { local, domain } = splitAddress(a);
  if (!a.includes("@") || !domain.endsWith(".") || domain.startsWith("[")) return a;
  return `${local}@${domain.replace(/\.+$/, "")}`;
}
