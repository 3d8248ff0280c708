/**
 * Lookup keys from a message on standard input, for `postmap -hq -` and
 * `postmap -bq -` (testing header_checks and body_checks tables): -h gives
 * each logical header line (a folded header is one key with its newlines),
 * -b each body line after the header. Without MIME parsing (Postfix's -m):
 * attachment headers are body lines here.
 *
 * The message is untrusted text and only split into lines.
 */

export function messageKeys(text: string, headers: boolean, body: boolean): string[] {
  const lines = text.split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  const keys: string[] = [];
  let i = 0;
  // The header ends at an empty line or at the first line that is neither a header nor a continuation.
  let current: string | undefined;
  for (; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, "");
    if (current !== undefined && /^[ \t]/.test(line)) {
      current += `\n${line}`;
      continue;
    }
    if (current !== undefined && headers) keys.push(current);
    current = undefined;
    if (line === "") {
      i++;
      break;
    }
    if (!/^[\x21-\x39\x3b-\x7e]+[ \t]*:/.test(line)) break;
    current = line;
  }
  if (current !== undefined && headers) keys.push(current);
  if (body) for (; i < lines.length; i++) keys.push(lines[i]!.replace(/\r$/, ""));
  return keys;
}
