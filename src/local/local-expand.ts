/**
 * local(8)'s `$name` expansion of forward_path, luser_relay and
 * command_execution_directory: $user, $home, $shell, $recipient, $extension,
 * $domain, $local (also $mailbox) and $recipient_delimiter, with the forms
 * $name, ${name}, $(name), ${name?value}, ${name:value},
 * ${name?{value1}:{value2}} and $$.
 *
 * The values come from the envelope and the passwd file and are untrusted:
 * characters outside the filter (forward_expansion_filter and friends)
 * become underscores, and values are never expanded again. The pattern is
 * configuration text.
 */

export interface LocalExpansion {
  text: string;
  /** A plain $name referred to a value that is not there (that forward_path entry is skipped). */
  undefinedName: boolean;
  /** $extension was used with a value (the extension counts as matched). */
  extensionUsed: boolean;
  /** The pattern does not parse. */
  error?: string;
}

function findClose(s: string, open: number): number {
  const opener = s[open]!;
  const closer = opener === "{" ? "}" : ")";
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === opener) depth++;
    else if (s[i] === closer && --depth === 0) return i;
  }
  return -1;
}

export function localExpand(pattern: string, values: Record<string, string | undefined>, filter?: string): LocalExpansion {
  const result: LocalExpansion = { text: "", undefinedName: false, extensionUsed: false };
  const value = (name: string, use: boolean): string | undefined => {
    const v = Object.hasOwn(values, name) ? values[name] : undefined;
    const defined = v !== undefined && v !== "";
    if (use && name === "extension" && defined) result.extensionUsed = true;
    if (!defined) return undefined;
    if (!filter) return v;
    let out = "";
    for (const c of v) out += filter.includes(c) ? c : "_";
    return out;
  };
  const expand = (text: string): string => {
    let out = "";
    let i = 0;
    while (i < text.length) {
      const dollar = text.indexOf("$", i);
      if (dollar < 0) {
        out += text.slice(i);
        break;
      }
      out += text.slice(i, dollar);
      const next = text[dollar + 1];
      if (next === "$") {
        out += "$";
        i = dollar + 2;
      } else if (next === "{" || next === "(") {
        const close = findClose(text, dollar + 1);
        if (close < 0) throw new Error(`missing closing bracket in "${text}"`);
        out += braced(text.slice(dollar + 2, close));
        i = close + 1;
      } else {
        const m = /^[A-Za-z0-9_]+/.exec(text.slice(dollar + 1));
        if (!m) {
          out += "$";
          i = dollar + 1;
          continue;
        }
        const v = value(m[0], true);
        if (v === undefined) result.undefinedName = true;
        out += v ?? "";
        i = dollar + 1 + m[0].length;
      }
    }
    return out;
  };
  const braced = (inner: string): string => {
    const m = /^[A-Za-z0-9_]+/.exec(inner);
    if (!m) throw new Error(`invalid name in "\${${inner}}"`);
    const rest = inner.slice(m[0].length);
    if (rest === "") {
      const v = value(m[0], true);
      if (v === undefined) result.undefinedName = true;
      return v ?? "";
    }
    const op = rest[0];
    if (op !== "?" && op !== ":") throw new Error(`invalid expression "\${${inner}}"`);
    const v = value(m[0], op === "?");
    let whenSet = "";
    let whenUnset = "";
    const body = rest.slice(1);
    if (body.startsWith("{")) {
      const close = findClose(body, 0);
      if (close < 0) throw new Error(`missing '}' in "\${${inner}}"`);
      const first = body.slice(1, close);
      const after = body.slice(close + 1).trim();
      if (after === "") [whenSet, whenUnset] = op === "?" ? [first, ""] : ["", first];
      else if (op === "?" && after.startsWith(":") && after.slice(1).trim().startsWith("{") && after.trim().endsWith("}")) {
        whenSet = first;
        whenUnset = after.slice(1).trim().slice(1, -1);
      } else throw new Error(`invalid expression "\${${inner}}"`);
    } else [whenSet, whenUnset] = op === "?" ? [body, ""] : ["", body];
    return expand(v !== undefined ? whenSet : whenUnset);
  };
  try {
    result.text = expand(pattern);
  } catch (err) {
    result.error = (err as Error).message;
  }
  return result;
}
