/**
 * The committed bytecode-order profile (scripts/bytecode-order.ts) still
 * describes what sendmail runs. The build lays dist/postern out by it; a
 * profile that no longer names the functions a submission uses costs
 * every sendmail the page faults the layout saves (bench/README.md, issue
 * 16 session 9), without any test noticing. This records a fresh profile
 * from the current build and requires most of its functions to be in the
 * committed one. When it fails: `bun scripts/bytecode-order.ts` after
 * `npm run build`, and commit the file.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { ORDER_FILE, recordSendmailOrder } from "../../scripts/bytecode-order.ts";
import { bin } from "../helpers/run.ts";
import { ensureMailOwner } from "../helpers/mail-system.ts";
import { dirname } from "node:path";

/** The function hashes a profile names, whatever tier it recorded them at. */
function functions(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split("\n")) {
    const m = /^[A-Z] ([0-9a-f]{16})$/.exec(line);
    if (m) out.add(m[1]!);
  }
  return out;
}

test("a sendmail run uses the functions the committed profile lays out first", () => {
  // as root the private system's mail_owner must exist; on a fresh machine this file may run first
  ensureMailOwner();
  const committed = functions(readFileSync(ORDER_FILE, "utf8"));
  const fresh = functions(recordSendmailOrder(dirname(bin("postern"))));
  // a run records thousands (the runtime's own built-in modules included); an empty record would prove nothing
  expect(fresh.size).toBeGreaterThan(1000);
  let known = 0;
  for (const f of fresh) if (committed.has(f)) known++;
  const share = known / fresh.size;
  if (share < 0.9) {
    throw new Error(`only ${(share * 100).toFixed(1)} % of the functions sendmail runs are in ${ORDER_FILE}: record it again with "bun scripts/bytecode-order.ts"`);
  }
});
