/**
 * Postfix's smtp-source as the SMTP scenarios run it: 4 KiB messages, one
 * connection per session (`-d`), "bench.client" as its HELO name, into a
 * system's SMTP server on 127.0.0.1; and the moment it exits, with the last
 * line of its stderr when it failed.
 *
 * Runs as root in the harness; smtp-source talks only to 127.0.0.1.
 */

export const SMTP_SOURCE = "/usr/sbin/smtp-source";
export const SMTP_SOURCE_MESSAGE_SIZE = 4096;

export interface SmtpSourceLoad {
  sessions: number;
  messages: number;
  from: string;
  to: string;
  /** Recipients per message (-r); 1 leaves the option out. */
  recipients?: number;
  port: number;
}

/** A running smtp-source: when it exited (0 while it runs) and why it failed. */
export interface SmtpSourceRun {
  readonly proc: ReturnType<typeof Bun.spawn>;
  sentAt(): number;
  error(): string | undefined;
}

/** Starts smtp-source; the caller's clock should start just before. */
export function startSmtpSource(load: SmtpSourceLoad): SmtpSourceRun {
  const argv = [SMTP_SOURCE, "-d", "-s", String(load.sessions), "-m", String(load.messages), "-l", String(SMTP_SOURCE_MESSAGE_SIZE), "-M", "bench.client", "-f", load.from, "-t", load.to];
  if ((load.recipients ?? 1) > 1) argv.push("-r", String(load.recipients));
  argv.push(`127.0.0.1:${load.port}`);
  const proc = Bun.spawn(argv, { stdout: "ignore", stderr: "pipe", stdin: "ignore" });
  let sentAt = 0;
  let error: string | undefined;
  void proc.exited.then(async (code) => {
    sentAt = performance.now();
    if (code !== 0) error = `smtp-source exit ${code}: ${(await new Response(proc.stderr as ReadableStream).text()).trim().split("\n").at(-1) ?? ""}`;
  });
  return { proc, sentAt: () => sentAt, error: () => error };
}
