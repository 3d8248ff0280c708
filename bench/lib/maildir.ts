/** Counting delivered messages in a Maildir (new/ and cur/), for end-to-end checks. */
import { readdirSync } from "node:fs";
import { join } from "node:path";

export function maildirCount(maildir: string): number {
  let n = 0;
  for (const sub of ["new", "cur"]) {
    try {
      n += readdirSync(join(maildir, sub)).length;
    } catch {}
  }
  return n;
}
