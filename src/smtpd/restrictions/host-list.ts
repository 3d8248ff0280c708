/**
 * Postfix's host and address lists (namadr_list), as mynetworks,
 * smtpd_client_event_limit_exceptions, smtpd_forbid_bare_newline_exclusions
 * and smtpd_sasl_exceptions_networks use them: patterns separated by commas
 * or blanks, the first that matches decides.
 *
 * - `192.0.2.0/24`, `[2001:db8::]/32`, `192.0.2.1`, `[::1]`: networks and addresses;
 * - `example.com` matches that client host name and (parent_domain_matches_subdomains)
 *   its subdomains, `.example.com` only the subdomains;
 * - `type:table`: the client name, then the address, looked up in the table;
 * - `/file/name`: the patterns in that file;
 * - `!pattern` inverts a match.
 *
 * The patterns come from the configuration; names and addresses from the
 * network are only compared. A bad pattern is a ConfigError when the list is
 * built, so the daemon refuses to start rather than misjudge clients.
 */
import { readFileSync } from "node:fs";
import { ConfigError } from "../../global/config/source.ts";
import { splitList } from "../../global/config/value-text.ts";
import { networkContains, parseIpAddress, parseNetwork, type IpAddress, type IpNetwork } from "../../util/net/cidr-match.ts";
import { openTable } from "../../global/tables/open-table.ts";
import type { Config } from "../../global/config/config.ts";

type Pattern =
  | { kind: "network"; net: IpNetwork; negate: boolean }
  | { kind: "domain"; domain: string; subdomainsOnly: boolean; negate: boolean }
  | { kind: "table"; spec: string; negate: boolean };

export interface HostMatcher {
  /** Whether the client with this (verified) name and address is in the list. */
  matches(name: string, address: string): Promise<boolean>;
  readonly empty: boolean;
}

function expandPatterns(words: readonly string[], param: string, depth = 0): string[] {
  const out: string[] = [];
  for (const w of words) {
    const bare = w.replace(/^!+/, "");
    if (bare.startsWith("/")) {
      if (depth > 5) throw new ConfigError(`${param}: files nested too deeply at "${bare}"`);
      let text: string;
      try {
        text = readFileSync(bare, "utf8");
      } catch (err) {
        throw new ConfigError(`${param}: cannot read "${bare}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      const inner = splitList(text.split("\n").filter((l) => !/^\s*#/.test(l)).join("\n"));
      out.push(...expandPatterns(inner, param, depth + 1));
    } else out.push(w);
  }
  return out;
}

export function parseHostList(words: readonly string[], param: string): Pattern[] {
  return expandPatterns(words, param).map((word): Pattern => {
    let negate = false;
    let w = word;
    while (w.startsWith("!")) {
      negate = !negate;
      w = w.slice(1);
    }
    if (/^[a-z][a-z0-9_-]*:/i.test(w) && !/^\[/.test(w) && !parseIpAddress(w.replace(/\/\d+$/, ""))) return { kind: "table", spec: w, negate };
    const looksNumeric = /^\[|^[0-9.]+(\/\d+)?$|:/.test(w);
    if (looksNumeric) {
      const net = parseNetwork(w);
      if ("problem" in net) throw new ConfigError(`${param}: ${net.problem}`);
      return { kind: "network", net, negate };
    }
    const lower = w.toLowerCase().replace(/\.$/, "");
    return lower.startsWith(".") ? { kind: "domain", domain: lower.slice(1), subdomainsOnly: true, negate } : { kind: "domain", domain: lower, subdomainsOnly: false, negate };
  });
}

function domainMatches(p: Extract<Pattern, { kind: "domain" }>, name: string): boolean {
  if (name === "unknown" || name === "") return false;
  const n = name.toLowerCase().replace(/\.$/, "");
  if (!p.subdomainsOnly && n === p.domain) return true;
  return n.endsWith(`.${p.domain}`);
}

export function hostMatcher(words: readonly string[], param: string, config?: Config): HostMatcher {
  const patterns = parseHostList(words, param);
  return {
    empty: patterns.length === 0,
    async matches(name: string, address: string): Promise<boolean> {
      const addr: IpAddress | undefined = parseIpAddress(address);
      for (const p of patterns) {
        let hit = false;
        switch (p.kind) {
          case "network":
            hit = addr !== undefined && networkContains(p.net, addr);
            break;
          case "domain":
            hit = domainMatches(p, name);
            break;
          case "table": {
            const table = openTable(p.spec, config);
            hit = (name !== "unknown" && (await table.lookup(name)) !== undefined) || (await table.lookup(address)) !== undefined;
            break;
          }
        }
        if (hit) return !p.negate;
      }
      return false;
    },
  };
}

/** A matcher built from a list parameter of `config`. */
export function hostMatcherFor(config: Config, param: string): HostMatcher {
  return hostMatcher(config.list(param), param, config);
}
