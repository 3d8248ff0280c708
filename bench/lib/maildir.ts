/** Counting delivered messages in a Maildir (new/ and cur/), for end-to-end checks, and clearing it between runs. */
import { readdirSync, rmSync } from "node:fs";
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

/** Removes every delivered message (new/ and cur/) so the next run starts from an empty Maildir. */
export function clearMaildir(maildir: string): void {
  for (const sub of ["new", "cur"]) {
    let names: string[];
    try {
      names = readdirSync(join(maildir, sub));
    } catch {
      continue;
    }
    for (const name of names) rmSync(join(maildir, sub, name), { force: true });
  }
}
