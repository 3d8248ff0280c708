/**
 * Where a job runs. In unprivileged mode every job runs in the agent's own
 * process, as the invoking user. As root, a job for another user goes to a
 * worker (`postern local-worker`) that has become that user, with its uid,
 * gid and supplementary groups; one worker per identity is kept for a few
 * seconds of idleness so a burst of deliveries pays the start-up once.
 * Jobs for root itself run in the agent.
 *
 * Runs in the local delivery agent (root or unprivileged). Worker replies
 * are results only; a worker that dies fails its jobs with a temporary error,
 * and one that does not answer a job in time (stopped by its user, stuck) is
 * killed.
 */
import { executeJob } from "./job-exec.ts";
import type { Identity, WorkerJob, JobResult } from "./jobs.ts";
import { encodeFrame, FrameReader } from "./protocol.ts";
import { log } from "../../util/log.ts";

export interface Performer {
  /** Runs `job`; `identity` undefined means the agent's own rights. */
  run(identity: Identity | undefined, job: WorkerJob, payload?: Uint8Array): Promise<JobResult>;
  /** Stops idle workers; running jobs finish. */
  close(): Promise<void>;
}

const EMPTY = new Uint8Array(0);

/** Longest stderr line of a worker that gets logged (and kept while its end has not come). */
const MAX_ERROR_LINE = 4096;

export class InProcessPerformer implements Performer {
  run(_identity: Identity | undefined, job: WorkerJob, payload: Uint8Array = EMPTY): Promise<JobResult> {
    return executeJob(job, payload);
  }
  async close(): Promise<void> {}
}

export interface WorkerPoolOptions {
  /** argv that starts a worker; "UID GID USER|-" are appended. */
  command: string[];
  /** argv[0] the worker sees, so main.ts dispatches it (`postern`). */
  argv0?: string;
  /** Environment of the workers (clean: PATH, TZ, LANG, ...). */
  env: Record<string, string>;
  cwd?: string;
  /** How long an idle worker lives. */
  idleMs?: number;
  /** A worker that has not answered a job after this long is killed (localDeliveryLimits().jobMs). */
  jobTimeoutMs?: number;
}

interface Pending {
  resolve: (r: JobResult) => void;
  timer?: ReturnType<typeof setTimeout>;
}

class Worker {
  readonly #proc: ReturnType<typeof Bun.spawn>;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #dead = false;
  #killedFor: string | undefined;

  constructor(
    readonly key: string,
    identity: Identity,
    opts: WorkerPoolOptions,
    private readonly onGone: (w: Worker) => void,
  ) {
    this.#proc = Bun.spawn([...opts.command, String(identity.uid), String(identity.gid), identity.user ?? "-"], {
      argv0: opts.argv0 ?? "postern",
      env: opts.env,
      cwd: opts.cwd ?? "/",
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    void this.#readReplies();
    void this.#readErrors();
    void this.#proc.exited.then((code) => this.#gone(`exited with status ${code}`));
  }

  get busy(): boolean {
    return this.#pending.size > 0;
  }

  async #readReplies(): Promise<void> {
    // replies carry no payload (protocol.ts): announcing one is a protocol error, not a buffer to fill
    const reader = new FrameReader(0);
    try {
      for await (const chunk of this.#proc.stdout as ReadableStream<Uint8Array>) {
        for (const { header } of reader.push(chunk)) {
          const p = this.#pending.get(Number(header.id));
          if (!p) continue;
          this.#pending.delete(Number(header.id));
          clearTimeout(p.timer);
          p.resolve(header.result as JobResult);
        }
        this.#armIdle();
      }
    } catch (err) {
      log.warn(`local delivery worker ${this.key}: ${(err as Error).message}`);
      this.#proc.kill("SIGKILL");
    }
  }

  async #readErrors(): Promise<void> {
    let text = "";
    for await (const chunk of this.#proc.stderr as ReadableStream<Uint8Array>) {
      text += Buffer.from(chunk).toString("utf8");
      let nl;
      while ((nl = text.indexOf("\n")) >= 0) {
        const line = text.slice(0, nl).trim();
        text = text.slice(nl + 1);
        if (line) log.warn(`local delivery worker for uid ${this.key}: ${line.slice(0, MAX_ERROR_LINE)}`);
      }
      // the worker is the recipient's account: a line without an end is cut, never kept growing
      if (text.length > MAX_ERROR_LINE) {
        log.warn(`local delivery worker for uid ${this.key}: ${text.slice(0, MAX_ERROR_LINE).trim()} (cut)`);
        text = "";
      }
    }
  }

  #gone(why: string): void {
    if (this.#dead) return;
    this.#dead = true;
    clearTimeout(this.#idleTimer);
    this.onGone(this);
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.resolve({ ok: false, dsn: "4.3.0", text: `local delivery worker ${this.#killedFor ?? why}` });
    }
    this.#pending.clear();
  }

  /**
   * A job overran its time limit: the worker is stopped (its user may have
   * sent it SIGSTOP) or stuck. SIGKILL works on a stopped process too; its
   * jobs fail with a temporary error, and the next job gets a new worker.
   */
  #overrun(timeoutMs: number): void {
    if (this.#dead) return;
    this.#killedFor = `did not answer within ${Math.round(timeoutMs / 1000)}s and was killed`;
    log.warn(`local delivery worker for uid ${this.key} (pid ${this.#proc.pid}) ${this.#killedFor}`);
    // no new job may go to it while it dies
    this.onGone(this);
    this.#proc.kill("SIGKILL");
  }

  #armIdle(): void {
    clearTimeout(this.#idleTimer);
    if (this.#pending.size === 0 && !this.#dead) this.#idleTimer = setTimeout(() => this.stop(), this.idleMs);
  }

  idleMs = 5000;
  jobTimeoutMs: number | undefined;

  run(job: WorkerJob, payload: Uint8Array): Promise<JobResult> {
    if (this.#dead) return Promise.resolve({ ok: false, dsn: "4.3.0", text: "local delivery worker is gone" });
    clearTimeout(this.#idleTimer);
    const id = this.#nextId++;
    return new Promise<JobResult>((resolve) => {
      const timeoutMs = this.jobTimeoutMs;
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => this.#overrun(timeoutMs), timeoutMs);
      this.#pending.set(id, { resolve, timer });
      const sink = this.#proc.stdin as import("bun").FileSink;
      try {
        sink.write(encodeFrame({ id, job }, payload));
        void Promise.resolve(sink.flush()).catch(() => this.#proc.kill("SIGKILL"));
      } catch (err) {
        this.#pending.delete(id);
        clearTimeout(timer);
        resolve({ ok: false, dsn: "4.3.0", text: `cannot send a job to the local delivery worker: ${(err as Error).message}` });
      }
    });
  }

  /** Closes its input: the worker finishes its jobs and exits. */
  stop(): void {
    if (this.#dead) return;
    try {
      void (this.#proc.stdin as import("bun").FileSink).end();
    } catch {
      this.#proc.kill("SIGKILL");
    }
  }

  exited(): Promise<number> {
    return this.#proc.exited;
  }
}

/** Root's performer: jobs for other users go to per-identity workers. */
export class WorkerPool implements Performer {
  readonly #workers = new Map<string, Worker>();
  readonly #local = new InProcessPerformer();

  constructor(private readonly opts: WorkerPoolOptions) {}

  run(identity: Identity | undefined, job: WorkerJob, payload: Uint8Array = EMPTY): Promise<JobResult> {
    if (!identity || (identity.uid === process.getuid?.() && identity.gid === process.getgid?.())) return this.#local.run(identity, job, payload);
    const key = `${identity.uid}:${identity.gid}:${identity.user ?? "-"}`;
    let w = this.#workers.get(key);
    if (!w) {
      w = new Worker(key, identity, this.opts, (gone) => {
        if (this.#workers.get(gone.key) === gone) this.#workers.delete(gone.key);
      });
      w.idleMs = this.opts.idleMs ?? 5000;
      w.jobTimeoutMs = this.opts.jobTimeoutMs;
      this.#workers.set(key, w);
    }
    return w.run(job, payload);
  }

  async close(): Promise<void> {
    const all = [...this.#workers.values()];
    for (const w of all) w.stop();
    await Promise.all(all.map((w) => w.exited()));
  }

  /** Number of live workers (for tests and status). */
  get size(): number {
    return this.#workers.size;
  }
}
