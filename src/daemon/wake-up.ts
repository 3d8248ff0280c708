/**
 * A daemon's wake-up loop: runs a pass of its work when a watched directory
 * changes (fs.watch), when the poll timer fires, and when asked (trigger).
 * Triggers that arrive together make one pass; two passes never run at once;
 * a trigger during a pass makes exactly one more pass after it; stop() ends
 * the watching and the timer and waits for the pass in progress. A pass that
 * throws is reported and the loop goes on. With `named`, a change whose
 * entry the watch names goes to the daemon first: it may ask for no pass
 * (a temporary file), or for a pass that needs no full scan (the pass is
 * told `full` = false when nothing else asked for it). Pickup (maildrop/) and the queue
 * manager (incoming/) use it; the service table gives each its directory and
 * poll interval (src/global/system/service-table.ts).
 *
 * Runs in the daemon that uses it, as that daemon's user. It reads nothing
 * itself: a directory event only says "look again", never what changed.
 */
import { watch } from "node:fs";
import { basename } from "node:path";
import { log } from "../util/log.ts";
import { watchDirectoryEvents } from "./dir-events.ts";

export interface WakeUpOptions {
  /**
   * The work; never called while a previous call has not settled. `full` is false when only
   * changes that `named` accepted asked for this pass (the daemon knows their names), true when
   * the timer, trigger(), the first pass or a change without a name did.
   */
  pass: (full: boolean) => unknown;
  /** How often a pass runs without any other trigger. */
  pollMs: number;
  /** A directory whose changes trigger a pass; without it, only the timer and trigger() do. */
  watch?: string;
  /** A pass that threw (default: a warning naming `what`). */
  failed?: (err: Error) => void;
  /** What a pass is, for the log ("pickup pass", "queue scan"). */
  what?: string;
  /**
   * A change to the entry `name` of the watched directory: false when it needs no pass, true
   * when it needs one that may skip the full scan (without this option every change asks for a
   * full pass). The name is only a hint: the daemon checks the entry as it would any other.
   */
  named?: (name: string) => boolean;
  /**
   * Watch only for entries renamed into the directory (and, with closeWrite, files written in
   * place), not every change (./dir-events.ts): for a directory whose writers rename their
   * files in, where every other change would be a wake-up for nothing. The poll timer finds
   * what arrives otherwise. Without inotify, node:fs's watch (every change) is used.
   */
  arrivals?: { closeWrite?: boolean };
}

export class WakeUp {
  #opts: WakeUpOptions;
  #pollMs: number;
  #watcher: { close(): void } | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #scheduled = false;
  #again = false;
  /** Set from the moment a pass is called (a synchronous pass may trigger again) until it settles. */
  #busy = false;
  #running: Promise<void> | undefined;
  #started = false;
  #stopped = false;
  /** A full pass was asked for since the last pass started. */
  #full = false;

  constructor(opts: WakeUpOptions) {
    this.#opts = opts;
    this.#pollMs = opts.pollMs;
  }

  /** Starts watching and the timer; `firstPass` (default true) runs a pass at once. */
  start(firstPass = true): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    const dir = this.#opts.watch;
    if (dir !== undefined) {
      const name = `${basename(dir)}/`;
      const named = this.#opts.named;
      const changed = (filename: string | null | undefined) => {
        if (named === undefined || filename === null || filename === undefined) this.trigger();
        else if (named(String(filename))) this.#request(false);
      };
      const failed = (err: Error) => log.warn(`watching ${name} failed: ${err.message}; scanning every ${this.#pollMs / 1000}s`);
      const arrivals = this.#opts.arrivals;
      try {
        if (arrivals) {
          try {
            this.#watcher = watchDirectoryEvents(dir, { closeWrite: arrivals.closeWrite ?? false, onEvent: changed, onError: failed });
          } catch (err) {
            log.warn(`cannot watch ${name} for arrivals only: ${(err as Error).message}; watching every change`);
          }
        }
        if (!this.#watcher) {
          const w = watch(dir, (_event, filename) => changed(filename));
          w.on("error", failed);
          this.#watcher = w;
        }
      } catch (err) {
        log.warn(`cannot watch ${name}: ${(err as Error).message}; scanning every ${this.#pollMs / 1000}s`);
      }
    }
    this.#startTimer();
    if (firstPass) this.trigger();
  }

  /** A new poll interval (a reload); the timer starts over. */
  setPollMs(ms: number): void {
    this.#pollMs = ms;
    if (this.#timer !== undefined) this.#startTimer();
  }

  /** Asks for a pass soon; triggers before it starts make one pass, a trigger during a pass one more after it. */
  trigger(): void {
    this.#request(true);
  }

  #request(full: boolean): void {
    if (this.#stopped) return;
    if (full) this.#full = true;
    if (this.#busy) {
      this.#again = true;
      return;
    }
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#run());
  }

  /** No more passes; resolves when the pass in progress, if any, has settled. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  #startTimer(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = setInterval(() => this.trigger(), this.#pollMs);
  }

  #run(): void {
    this.#scheduled = false;
    if (this.#stopped || this.#busy) return;
    this.#again = false;
    this.#busy = true;
    const full = this.#full || this.#opts.named === undefined;
    this.#full = false;
    this.#running = (async () => {
      try {
        await this.#opts.pass(full);
      } catch (err) {
        if (this.#opts.failed) this.#opts.failed(err as Error);
        else log.warn(`${this.#opts.what ?? "pass"}: ${(err as Error).message}`);
      }
    })().finally(() => {
      this.#busy = false;
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.#request(false);
      }
    });
  }
}
