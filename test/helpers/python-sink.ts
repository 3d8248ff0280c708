/**
 * Starts test/helpers/smtp-sink.py (Debian's python3-aiosmtpd) on
 * 127.0.0.1 and reads back the messages it received. The sink stops when
 * stop() closes its stdin (or by itself after five minutes).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./run.ts";

export interface SinkOptions {
  starttls?: boolean;
  implicitTls?: boolean;
  users?: Record<string, string>;
  authRequireTls?: boolean;
  lmtp?: boolean;
  /** Answer 451 to the first N RCPT commands. */
  deferRcpt?: number;
  /** 550 for recipients starting with this. */
  rejectPrefix?: string;
}

export interface SinkMessage {
  mail_from: string;
  mail_options: string[];
  rcpt_tos: string[];
  rcpt_options: string[];
  data: string;
  tls: boolean;
  auth_user: string | null;
}

export interface PythonSink {
  port: number;
  messages(): SinkMessage[];
  stop(): void;
}

export const PYTHON = "/usr/bin/python3";

export async function startPythonSink(opts: SinkOptions = {}): Promise<PythonSink> {
  const outdir = mkdtempSync(join(tmpdir(), "postern-pysink-"));
  const args = {
    outdir,
    starttls: opts.starttls ?? false,
    implicit_tls: opts.implicitTls ?? false,
    cert: join(ROOT, "test/fixtures/tls/localhost.crt"),
    key: join(ROOT, "test/fixtures/tls/localhost.key"),
    ...(opts.users ? { users: opts.users, auth_require_tls: opts.authRequireTls ?? true } : {}),
    lmtp: opts.lmtp ?? false,
    defer_rcpt: opts.deferRcpt ?? 0,
    ...(opts.rejectPrefix ? { reject_prefix: opts.rejectPrefix } : {}),
  };
  const proc = Bun.spawn([PYTHON, join(ROOT, "test/helpers/smtp-sink.py"), JSON.stringify(args)], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  let text = "";
  const deadline = Date.now() + 15_000;
  while (!/READY \d+/.test(text)) {
    if (Date.now() > deadline) throw new Error("the Python SMTP sink did not start");
    const { value, done } = await reader.read();
    if (done) throw new Error(`the Python SMTP sink exited: ${text}`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const port = Number(/READY (\d+)/.exec(text)![1]);
  return {
    port,
    messages() {
      return readdirSync(outdir)
        .filter((n) => n.endsWith(".json"))
        .sort()
        .map((n) => JSON.parse(readFileSync(join(outdir, n), "utf8")) as SinkMessage);
    },
    stop() {
      try {
        proc.stdin.end();
      } catch {}
      proc.kill();
      rmSync(outdir, { recursive: true, force: true });
    },
  };
}
