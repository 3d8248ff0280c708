/**
 * When a service the master starts on demand (the service table's
 * `onDemand`) has nothing to do: it counts what keeps the service busy
 * (open connections on its socket, requests still being handled) and calls
 * `onIdle` once, when the count has stayed at zero for `max_idle` (read
 * when the count drops, so a reload's value applies from the next idle
 * spell). The service then stops accepting and exits with status 0; a
 * connection that arrives after that waits in the master's socket until the
 * master starts the service again (src/master/on-demand.ts).
 *
 * Runs in showq (mail_owner) and local (root); trusts its own counts only.
 */
import type { Activity } from "../global/ipc/json-lines.ts";

export class IdleExit implements Activity {
  #busy = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #fired = false;

  constructor(
    private readonly idleMs: () => number,
    private readonly onIdle: () => void,
  ) {
    this.#arm();
  }

  begin(): void {
    this.#busy++;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  end(): void {
    if (this.#busy === 0) throw new Error("IdleExit.end() without begin()");
    this.#busy--;
    if (this.#busy === 0) this.#arm();
  }

  /** Stops the countdown for good (the service stops for another reason). */
  cancel(): void {
    this.#fired = true;
    clearTimeout(this.#timer);
  }

  #arm(): void {
    if (this.#fired) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      if (this.#busy !== 0 || this.#fired) return;
      this.#fired = true;
      this.onIdle();
    }, this.idleMs());
  }
}
