/**
 * Records which functions a sendmail submission runs, for the build's
 * profile-guided bytecode layout (`bun build --bytecode-order`): the build
 * puts the bytecode of the functions this run used together at the front
 * of the executable, so a sendmail process faults fewer of its pages in
 * (bench/README.md, issue 16 session 9: about 70 page faults and 4 ms per
 * sendmail on the bench machine). The output is committed
 * (scripts/bytecode-order/sendmail.order); a profile from an older build
 * still applies to the functions that did not change, so it only needs
 * recording again when sendmail's path changed a lot
 * (test/unit/scripts/bytecode-order.test.ts says when).
 *
 * Usage: `bun scripts/bytecode-order.ts [OUTPUT]` after `npm run build`.
 * Runs dist/sendmail once, as the invoking user, on a private queue in a
 * temporary directory, with the embedded default configuration.
 */
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { embeddedConfig } from "./embedded-config.ts";

const root = resolve(import.meta.dir, "..");
const dist = process.env.POSTERN_DIST ? resolve(process.env.POSTERN_DIST) : join(root, "dist");
export const ORDER_FILE = join(root, "scripts", "bytecode-order", "sendmail.order");

/** A small ordinary message, as cron or mailx would hand it over. */
export function sampleMessage(): string {
  const lines = ["From: cron <root@localhost>", "To: root@localhost", "Subject: daily report", "Message-ID: <order@localhost>", ""];
  for (let i = 0; i < 40; i++) lines.push(`line ${i} of the report: ${"x".repeat(50)}`);
  return lines.join("\n") + "\n";
}

/** Runs dist/sendmail once with BUN_BYTECODE_ORDER_OUT and returns the profile's text. */
export function recordSendmailOrder(distDir = dist): string {
  const dir = mkdtempSync(join(tmpdir(), "postern-order-"));
  try {
    const etc = join(dir, "etc");
    mkdirSync(etc);
    writeFileSync(join(etc, "postern.toml"), embeddedConfig(dir));
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", MAIL_CONFIG: etc };
    const check = Bun.spawnSync([join(distDir, "postern"), "check"], { env, stderr: "pipe" });
    if (check.exitCode !== 0) throw new Error(`postern check failed: ${check.stderr.toString()}`);
    const out = join(dir, "sendmail.order");
    const run = Bun.spawnSync([join(distDir, "sendmail"), "-i", "root@localhost"], {
      env: { ...env, BUN_BYTECODE_ORDER_OUT: out },
      stdin: Buffer.from(sampleMessage()),
      stderr: "pipe",
    });
    if (run.exitCode !== 0) throw new Error(`sendmail exited ${run.exitCode}: ${run.stderr.toString()}`);
    return readFileSync(out, "utf8");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const target = process.argv[2] ? resolve(process.argv[2]) : ORDER_FILE;
  const text = await recordSendmailOrder();
  mkdirSync(join(target, ".."), { recursive: true });
  writeFileSync(`${target}.tmp`, text);
  renameSync(`${target}.tmp`, target);
  console.log(`bytecode-order: ${target} (${text.split("\n").length - 1} functions)`);
}
