/**
 * The session places of one smtpd service in its process: up to `limit`
 * connections are served at once (the service's process_limit; 0: no
 * limit), and up to `waitBound` more wait for a place in arrival order, as
 * clients wait in the listen queue of Postfix's master while every smtpd
 * process is busy (its backlog: max(process_limit, default_process_limit)).
 * When a served connection gives its place back, the oldest waiting one
 * takes it; a waiting connection that closes leaves the line. Beyond the
 * bound a connection gets no place at all (the caller refuses it).
 *
 * Runs in the smtpd process as mail_owner. It only counts: what a waiting
 * client may send meanwhile is bounded by the caller (main.ts's window).
 */

/** A connection's place: held at once, or waited for. */
export interface Place {
  /** Whether the place is held now (false while the connection waits). */
  readonly held: boolean;
  /**
   * Runs `start` once the place is held: now if it is, else (in a
   * microtask) when an earlier connection gives its place back. Never, if
   * this one is released first.
   */
  whenHeld(start: () => void): void;
  /** Gives the place back, or leaves the line; once (more calls do nothing). */
  release(): void;
}

type State = "waiting" | "held" | "gone";

export class SessionPlaces {
  #held = 0;
  /** Waiting tickets in arrival order (a Set keeps insertion order and deletes in O(1)). */
  #waiting = new Set<Ticket>();

  constructor(
    private limit: number,
    private waitBound: number,
  ) {}

  /** Places held now. */
  get held(): number {
    return this.#held;
  }

  /** Connections waiting for a place. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /** A place now, a place in the line, or undefined when the line is full too. */
  take(): Place | undefined {
    if (this.#free()) {
      this.#held++;
      return new Ticket(this, "held");
    }
    if (this.#waiting.size >= this.waitBound) return undefined;
    const t = new Ticket(this, "waiting");
    this.#waiting.add(t);
    return t;
  }

  /** New limits (a reload): waiting connections take the places a higher limit frees. */
  resize(limit: number, waitBound: number): void {
    this.limit = limit;
    this.waitBound = waitBound;
    this.#grant();
  }

  /** Shutting down: the waiting connections never get a place, and no more may wait. */
  closeLine(): void {
    for (const t of this.#waiting) t._drop();
    this.#waiting.clear();
    this.waitBound = 0;
  }

  #free(): boolean {
    return this.limit <= 0 || this.#held < this.limit;
  }

  #grant(): void {
    while (this.#free()) {
      const next = this.#waiting.values().next();
      if (next.done) return;
      this.#waiting.delete(next.value);
      this.#held++;
      next.value._grant();
    }
  }

  /** @internal a ticket gives back its place or leaves the line */
  _release(t: Ticket, was: State): void {
    if (was === "waiting") this.#waiting.delete(t);
    else if (was === "held") {
      this.#held--;
      this.#grant();
    }
  }
}

class Ticket implements Place {
  #start: (() => void) | undefined;

  constructor(
    private readonly places: SessionPlaces,
    private state: State,
  ) {}

  get held(): boolean {
    return this.state === "held";
  }

  whenHeld(start: () => void): void {
    if (this.state === "held") start();
    else if (this.state === "waiting") this.#start = start;
  }

  release(): void {
    const was = this.state;
    this.state = "gone";
    this.#start = undefined;
    this.places._release(this, was);
  }

  /** @internal the line is closed */
  _drop(): void {
    this.state = "gone";
    this.#start = undefined;
  }

  /** @internal the oldest waiter gets a freed place */
  _grant(): void {
    this.state = "held";
    const start = this.#start;
    this.#start = undefined;
    // not inside the releasing session's own unwinding
    if (start) queueMicrotask(() => {
      if (this.state === "held") start();
    });
  }
}
