/**
 * Postfix's db_common: the `%` templates of the database tables' query,
 * search base and result_format settings, and their `domain` setting.
 *
 * In a query template: %s the key, %u its local part (the whole key when it
 * has no @), %d its domain, %1-%9 the domain's labels from the right, %S %U
 * %D the same as %s %u %d, %% a percent sign. In a result template the
 * lowercase forms stand for the result value and the uppercase ones (and
 * %1-%9) for the key. A key (or value) without the parts a template needs
 * is not looked up (or the value is skipped): no domain for %d, an empty
 * local part for %u, fewer labels than the highest %n, or an empty label
 * among those.
 *
 * The templates come from a trusted configuration file; the keys and values
 * are untrusted and reach the query only through the caller's quote
 * function.
 */
import { matchStringList } from "../access/string-list.ts";
import { splitList } from "../config/value-text.ts";

export class TemplateError extends Error {}

const KEY_DOMAIN = 1;
const KEY_USER = 2;
const VALUE_DOMAIN = 4;
const VALUE_USER = 8;

/** What the parsed templates of one table need (Postfix's DB_COMMON_CTX). */
export class TemplateContext {
  flags = 0;
  nparts = 0;
  /**
   * Only keys whose domain this Postfix string list matches are looked up
   * (names in lower case, !name, /file/name, type:table); undefined: all keys.
   */
  domains: string[] | undefined;

  /**
   * Notes what `format` uses; true when it depends on the key (or value) at
   * all. Throws TemplateError for an unknown `%` sequence.
   */
  parse(format: string, query: boolean): boolean {
    let dynamic = false;
    for (let i = 0; i < format.length; i++) {
      if (format[i] !== "%") continue;
      const c = format[++i];
      switch (c) {
        case "%":
          break;
        case "u":
          this.flags |= query ? KEY_USER : VALUE_USER;
          dynamic = true;
          break;
        case "d":
          this.flags |= query ? KEY_DOMAIN : VALUE_DOMAIN;
          dynamic = true;
          break;
        case "s":
        case "S":
          dynamic = true;
          break;
        case "U":
          this.flags |= KEY_USER;
          dynamic = true;
          break;
        case "D":
          this.flags |= KEY_DOMAIN;
          dynamic = true;
          break;
        default:
          if (c !== undefined && c >= "1" && c <= "9") {
            this.nparts = Math.max(this.nparts, Number(c));
            this.flags |= KEY_DOMAIN;
            dynamic = true;
            break;
          }
          throw new TemplateError(`invalid ${query ? "query" : "result"} template: ${format}`);
      }
    }
    return dynamic;
  }

  /**
   * Whether the key may be looked up at all under `domain` (Postfix's
   * db_common_check_domain); `lookup` answers for type:table entries. A
   * list that cannot be read throws TemplateError.
   */
  async domainAllows(key: string, lookup?: (table: string, key: string) => Promise<string | undefined>): Promise<boolean> {
    if (!this.domains) return true;
    const at = key.lastIndexOf("@");
    if (at <= 0) return false;
    try {
      return await matchStringList(this.domains, key.slice(at + 1).toLowerCase(), { paramName: "domain", lookup });
    } catch (err) {
      throw new TemplateError((err as Error).message);
    }
  }

  /**
   * Expands a query template for `key` (no `resultKey`), or a result template
   * for the value `value` found under `resultKey`. Undefined: skip (the
   * lookup, or this value).
   */
  expand(format: string, value: string, resultKey?: string, quote: (s: string) => string = (s) => s): string | undefined {
    if (value === "") return undefined;
    const isResult = resultKey !== undefined;
    let vdomain: string | undefined;
    let kdomain: string | undefined;
    const domainOf = (s: string) => {
      const at = s.lastIndexOf("@");
      return at < 0 ? undefined : { user: s.slice(0, at), domain: s.slice(at + 1) };
    };
    const v = domainOf(value);
    if (isResult) {
      if (this.flags & (VALUE_DOMAIN | VALUE_USER)) vdomain = v?.domain;
      if ((!vdomain && this.flags & VALUE_DOMAIN) || (v && v.user === "" && this.flags & VALUE_USER)) return undefined;
      const k = domainOf(resultKey);
      if (this.flags & (KEY_DOMAIN | KEY_USER)) kdomain = k?.domain;
      if ((!kdomain && this.flags & KEY_DOMAIN) || (k && k.user === "" && this.flags & KEY_USER)) return undefined;
    } else {
      if (this.flags & (KEY_DOMAIN | KEY_USER)) vdomain = v?.domain;
      if ((!vdomain && this.flags & KEY_DOMAIN) || (v && v.user === "" && this.flags & KEY_USER)) return undefined;
    }
    let labels: string[] = [];
    if (this.nparts > 0) {
      labels = ((isResult ? kdomain : vdomain) ?? "").split(".");
      if (labels.length < this.nparts) return undefined;
      for (let i = 0; i < this.nparts; i++) if (labels[labels.length - 1 - i] === "") return undefined;
    }
    const k = isResult ? domainOf(resultKey) : undefined;
    let out = "";
    for (let i = 0; i < format.length; i++) {
      const c = format[i]!;
      if (c !== "%") {
        out += c;
        continue;
      }
      const e = format[++i];
      switch (e) {
        case "%":
          out += "%";
          break;
        case "s":
          out += quote(value);
          break;
        case "u":
          out += quote(v ? v.user : value);
          break;
        case "d":
          out += quote(v?.domain ?? "");
          break;
        case "S":
          out += quote(isResult ? resultKey : value);
          break;
        case "U":
          out += quote(isResult ? (k ? k.user : resultKey) : v ? v.user : value);
          break;
        case "D":
          out += quote((isResult ? kdomain : vdomain) ?? "");
          break;
        default:
          out += quote(labels[labels.length - Number(e)] ?? "");
      }
    }
    return out;
  }
}

/** Postfix's `domain` setting: a string list; names (and !names) compared in lower case. */
export function parseDomainList(text: string | undefined): string[] | undefined {
  if (!text) return undefined;
  const list = splitList(text).map((d) => (/^!?[^/:]*$/.test(d) ? d.toLowerCase() : d));
  return list.length ? list : undefined;
}
