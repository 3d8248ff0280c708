/**
 * cidr: tables — `network result` rules applied in file order, first match
 * wins, with `!network` and `if network` ... `endif` (rule-file.ts). The
 * lookup key is an IPv4 or IPv6 address; anything else is simply not found.
 * `cidr:{ {rule}, {rule} }` holds the rules in the specification itself.
 * Results are returned as written (no $n substitution).
 *
 * Runs in daemons and commands; the file is untrusted text (bad rules are
 * skipped with a warning). File tables are re-read when the file changes.
 */
import { readFileSync } from "node:fs";
import { log } from "../../util/log.ts";
import { networkContains, parseIpAddress, parseNetwork, type IpNetwork } from "../../util/net/cidr-match.ts";
import { inlineRuleText } from "./inline-table.ts";
import { evaluateRules, parseRuleFile, type Pattern, type Rule, type RuleSyntax } from "./rule-file.ts";
import { ReloadingFile } from "./reloading-file.ts";
import { TRUSTED_OWNER, TableError, ownerOfUid, type Table, type TableOwner } from "./table.ts";

class NetworkPattern implements Pattern {
  constructor(readonly net: IpNetwork) {}

  /** A key that is no address, or one of the other family, is beyond this rule even when it is negated (as Postfix). */
  exec(key: string): true | null | undefined {
    const addr = parseIpAddress(key);
    if (!addr || addr.family !== this.net.family) return undefined;
    return networkContains(this.net, addr) ? true : null;
  }
}

const syntax: RuleSyntax<NetworkPattern> = {
  parsePattern(text) {
    const m = /^(\S*)([\s\S]*)$/.exec(text)!;
    const net = parseNetwork(m[1]!);
    if ("problem" in net) return { problem: `${net.problem}: skipping this rule` };
    return { pattern: new NetworkPattern(net), rest: m[2]! };
  },
  parseResult(rest) {
    if (rest === "") return { problem: "no lookup result: skipping this rule" };
    return { result: () => rest };
  },
};

export class CidrTable implements Table {
  readonly kind = "pattern";
  readonly #file: ReloadingFile<Rule[]> | undefined;
  readonly #inline: Rule[] | undefined;
  #closed = false;

  constructor(
    readonly spec: string,
    name: string,
  ) {
    const warn = (m: string) => log.warn(m);
    const inline = inlineRuleText(name);
    if (inline !== undefined) this.#inline = parseRuleFile(inline, `cidr map ${name}`, syntax, warn);
    else this.#file = new ReloadingFile(spec, name, "file", (path) => parseRuleFile(readFileSync(path, "utf8"), `cidr map ${path}`, syntax, warn));
  }

  async lookup(key: string): Promise<string | undefined> {
    if (this.#closed) throw new TableError(this.spec, "table is closed");
    return evaluateRules(this.#inline ?? this.#file!.current(), key);
  }

  owner(): TableOwner {
    return this.#file ? ownerOfUid(this.#file.stamp().uid) : TRUSTED_OWNER;
  }

  close(): void {
    this.#closed = true;
    this.#file?.close();
  }
}
