/**
 * inline: and static: — tables written in the configuration itself.
 *
 * `inline:{ key=value, { key = text with spaces } }`: elements are separated
 * by commas or white space; a bare element is `key=value` with no white
 * space; a braced element may have white space around "=" and inside the
 * value, not in the key. Keys fold to lower case; the last of duplicate keys
 * wins (as Postfix's in-memory table does).
 *
 * `static:value` answers every key with value; `static:{ text with spaces }`
 * keeps the spaces inside the braces.
 *
 * The text comes from the trusted configuration; malformed specifications
 * are errors at open time, with Postfix's wording.
 */
import { TRUSTED_OWNER, TableError, type Table, type TableOptions, type TableOwner } from "./table.ts";

/** Splits on commas and white space outside braces; braced groups stay whole, braces included. */
export function splitBraced(text: string): string[] {
  const out: string[] = [];
  let cur = "";
  let depth = 0;
  for (const c of text) {
    if (c === "{") depth++;
    else if (c === "}" && depth > 0) depth--;
    if (depth === 0 && (c === "," || c === " " || c === "\t" || c === "\n" || c === "\r")) {
      if (cur) out.push(cur);
      cur = "";
    } else cur += c;
  }
  if (cur) out.push(cur);
  return out;
}

/** The text inside `{ ... }` with the surrounding white space removed, or undefined when not braced. */
export function unbrace(text: string): string | undefined {
  const t = text.trim();
  if (!t.startsWith("{") || !t.endsWith("}")) return undefined;
  return t.slice(1, -1).trim();
}

/** Rules written inside the specification: `{ {rule}, {rule} }`, one rule per braced element. */
export function inlineRuleText(body: string): string | undefined {
  const inner = unbrace(body);
  if (inner === undefined) return undefined;
  return splitBraced(inner)
    .map((e) => unbrace(e) ?? e)
    .join("\n");
}

function splitNameValue(element: string): { name: string; value: string } | undefined {
  const m = /^([^\s=]+)\s*=\s*([\s\S]*)$/.exec(element);
  return m ? { name: m[1]!, value: m[2]!.trimEnd() } : undefined;
}

export class InlineTable implements Table {
  readonly kind = "fixed";
  readonly #map = new Map<string, string>();
  readonly #fold: boolean;
  #closed = false;

  constructor(
    readonly spec: string,
    body: string,
    options: TableOptions = {},
  ) {
    this.#fold = options.fold !== false;
    const need = `need "inline:{name=value...}"`;
    const inner = unbrace(body);
    if (inner === undefined || inner === "") throw new TableError(spec, `bad syntax: "${spec}"; ${need}`);
    for (const element of splitBraced(inner)) {
      const braced = unbrace(element);
      const nv = splitNameValue(braced ?? element);
      if (!nv || (braced === undefined && /\s/.test(nv.value))) {
        throw new TableError(spec, `missing '=' after attribute name: "${spec}"; ${need}`);
      }
      this.#map.set(this.#fold ? nv.name.toLowerCase() : nv.name, nv.value);
    }
  }

  async lookup(key: string): Promise<string | undefined> {
    if (this.#closed) throw new TableError(this.spec, "table is closed");
    return this.#map.get(this.#fold ? key.toLowerCase() : key);
  }

  owner(): TableOwner {
    return TRUSTED_OWNER;
  }

  async *entries(): AsyncIterable<[string, string]> {
    yield* this.#map;
  }

  close(): void {
    this.#closed = true;
  }
}

export class StaticTable implements Table {
  readonly kind = "fixed";
  readonly value: string;
  #closed = false;

  constructor(
    readonly spec: string,
    body: string,
  ) {
    this.value = unbrace(body) ?? body;
  }

  async lookup(_key: string): Promise<string | undefined> {
    if (this.#closed) throw new TableError(this.spec, "table is closed");
    return this.value;
  }

  owner(): TableOwner {
    return TRUSTED_OWNER;
  }

  close(): void {
    this.#closed = true;
  }
}

/** fail:name — every lookup fails, for testing error paths (Postfix's fail: table). */
export class FailTable implements Table {
  readonly kind = "fixed";
  constructor(readonly spec: string) {}

  async lookup(_key: string): Promise<string | undefined> {
    throw new TableError(this.spec, "table lookup failed (fail: table)");
  }

  owner(): TableOwner {
    return TRUSTED_OWNER;
  }

  close(): void {}
}
