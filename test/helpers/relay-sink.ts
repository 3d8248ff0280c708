/**
 * A mail system that relays every message to a Python SMTP sink, the next
 * hop as the rewriting tests see it: the system's SMTP server on 127.0.0.1,
 * `relayhost` pointing at the sink, and a way to wait for a message there.
 * Started and stopped by the test (by PID, through MailSystem and the sink).
 */
import { ensureMailOwner, waitFor, type Params } from "./mail-system.ts";
import { startPythonSink, type PythonSink, type SinkMessage } from "./python-sink.ts";
import { SmtpdSystem, type ServiceTable } from "./smtpd-system.ts";

export interface RelayToSink {
  sys: SmtpdSystem;
  sink: PythonSink;
  /** The message whose Subject: is `subject`, once the sink has it. */
  atSink(subject: string): Promise<SinkMessage>;
  stop(): Promise<void>;
}

/**
 * Starts the sink and the system. `tables` may write table files into the system's configuration
 * directory (`sys.etcFile`) and returns the parameters that name them; `services` are the
 * SmtpdSystem's [services.*] tables (one `smtp` service by default).
 */
export async function relayToSink(params: Params, tables?: (sys: SmtpdSystem) => Params, services?: Record<string, ServiceTable>): Promise<RelayToSink> {
  ensureMailOwner();
  const sink = await startPythonSink();
  const sys = new SmtpdSystem({ default_transport: "smtp", relayhost: `[127.0.0.1]:${sink.port}`, ...params }, services);
  if (tables) sys.writeConfig(tables(sys));
  await sys.start();
  return {
    sys,
    sink,
    atSink: (subject) => waitFor(`${subject} at the sink`, () => sink.messages().find((m) => m.data.includes(`Subject: ${subject}`))),
    async stop() {
      await sys.cleanup();
      sink.stop();
    },
  };
}
