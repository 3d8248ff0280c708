/**
 * The local service's side of the pipe agent (src/pipe/): the agent decides
 * the argv, the envelope lines and the user; this host runs the command
 * through local delivery's worker layer (worker/performer.ts), in a
 * `local-worker` that became exactly the service's user (its uid, gid and,
 * for a named user, its supplementary groups), never root: the agent
 * refuses uid 0 and gid 0 before it gets here. The runner is local(8)'s
 * (worker/command-run.ts: own session, the service's NAME_time_limit, 4096 bytes of
 * output kept), and so is the verdict (command-status.ts).
 *
 * Runs in the local service (root; in unprivileged mode the command runs
 * in-process as the invoking user). The argv holds untrusted addresses as
 * whole words; no shell sees them.
 */
import type { Config } from "../global/config/config.ts";
import { addExported } from "../global/system/child-environment.ts";
import type { PipeHost, PipeOutcome, PipeRun } from "../pipe/agent.ts";
import { judgeCommand } from "./command-status.ts";
import { deliveredToAddresses, envelopePrefix, quoteLocalPart } from "./message-copy.ts";
import type { Performer } from "./worker/performer.ts";

export function createPipeHost(config: Config, performer: Performer): PipeHost {
  const env = addExported({ PATH: "/usr/bin:/bin" }, config.list("export_environment"));
  return {
    async run(run: PipeRun, content: Uint8Array): Promise<PipeOutcome> {
      const command = run.argv[0]!;
      const r = await performer.run(
        run.identity,
        { type: "command", command, argv: run.argv, env, cwd: run.cwd, shell: [], timeLimitMs: run.timeLimitMs, prefix: run.prefix, quote: run.quote, dot: run.dot, blank: run.blank, eol: run.eol },
        content,
      );
      if (!r.ok) return { status: r.dsn.startsWith("4") ? "deferred" : "bounced", dsn: r.dsn, reason: r.text };
      if (r.type !== "command") return { status: "deferred", dsn: "4.3.0", reason: "pipe delivery: unexpected worker result" };
      return { ...judgeCommand(command, r.end, r.output), output: r.output };
    },
    deliveredTo: deliveredToAddresses,
    prefix: (lines) => envelopePrefix(lines),
    quoteLocal: quoteLocalPart,
    close: () => performer.close(),
  };
}
