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
 * configuration text. The syntax is the configuration's (src/global/config/expand.ts),
 * with literal values.
 */
import { Expander } from "../global/config/expand.ts";

export interface LocalExpansion {
  text: string;
  /** A plain $name referred to a value that is not there (that forward_path entry is skipped). */
  undefinedName: boolean;
  /** $extension was used with a value (the extension counts as matched). */
  extensionUsed: boolean;
  /** The pattern does not parse. */
  error?: string;
}

export function localExpand(pattern: string, values: Record<string, string | undefined>, filter?: string): LocalExpansion {
  const result: LocalExpansion = { text: "", undefinedName: false, extensionUsed: false };
  // a value is "there" when it is non-empty; characters outside the filter become underscores
  const lookup = (name: string): string | undefined => {
    const v = Object.hasOwn(values, name) ? values[name] : undefined;
    if (v === undefined || v === "") return undefined;
    if (!filter) return v;
    let out = "";
    for (const c of v) out += filter.includes(c) ? c : "_";
    return out;
  };
  const expander = new Expander(lookup, undefined, {
    literal: true,
    onReference(name, kind, value) {
      if (kind === "plain" && value === undefined) result.undefinedName = true;
      if (name === "extension" && kind !== ":" && value !== undefined) result.extensionUsed = true;
    },
  });
  try {
    result.text = expander.expand(pattern);
  } catch (err) {
    result.error = (err as Error).message;
  }
  return result;
}
