/**
 * SessionPlaces: an smtpd service's sessions beyond process_limit wait in
 * arrival order, bounded like Postfix's listen backlog, and take the
 * places sessions give back.
 */
import { describe, expect, test } from "bun:test";
import { SessionPlaces, type Place } from "../../../src/smtpd/session-places.ts";

/** Lets the microtasks that start granted sessions run. */
const settle = () => new Promise<void>((r) => queueMicrotask(r));

function started(place: Place): { count: number } {
  const s = { count: 0 };
  place.whenHeld(() => s.count++);
  return s;
}

describe("SessionPlaces", () => {
  test("beyond the limit a connection waits; the oldest waiting one still there takes a freed place", async () => {
    const places = new SessionPlaces(2, 2);
    const a = places.take()!;
    const b = places.take()!;
    expect(a.held && b.held).toBe(true);
    const c = places.take()!;
    const d = places.take()!;
    expect(c.held || d.held).toBe(false);
    const cs = started(c);
    const ds = started(d);
    // the line is full: no place at all
    expect(places.take()).toBeUndefined();
    // a waiting connection that leaves frees its place in the line
    c.release();
    expect(places.waiting).toBe(1);
    const e = places.take()!;
    const es = started(e);
    expect(e.held).toBe(false);
    a.release();
    await settle();
    expect([cs.count, ds.count, es.count]).toEqual([0, 1, 0]);
    expect(d.held).toBe(true);
    b.release();
    b.release(); // once only
    await settle();
    expect(es.count).toBe(1);
    expect([places.held, places.waiting]).toEqual([2, 0]);
  });

  test("a place granted before its start is known starts at once; a released one never starts", async () => {
    const places = new SessionPlaces(1, 5);
    const a = places.take()!;
    const b = places.take()!;
    const c = places.take()!;
    const cs = started(c);
    a.release();
    expect(b.held).toBe(true);
    expect(started(b).count).toBe(1);
    c.release();
    b.release();
    await settle();
    expect(cs.count).toBe(0);
    expect([places.held, places.waiting]).toEqual([0, 0]);
  });

  test("limit 0 is no limit; a reload to a higher limit lets waiting connections in", async () => {
    const unlimited = new SessionPlaces(0, 0);
    for (let i = 0; i < 1000; i++) expect(unlimited.take()?.held).toBe(true);
    const places = new SessionPlaces(1, 3);
    places.take();
    const waiting = [places.take()!, places.take()!, places.take()!];
    const s = waiting.map(started);
    places.resize(3, 3);
    await settle();
    expect(s.map((x) => x.count)).toEqual([1, 1, 0]);
    places.resize(0, 3);
    await settle();
    expect(s.map((x) => x.count)).toEqual([1, 1, 1]);
  });

  test("closing the line (shutdown): waiting connections never start, and no more may wait", async () => {
    const places = new SessionPlaces(1, 3);
    const a = places.take()!;
    const w = places.take()!;
    const ws = started(w);
    places.closeLine();
    expect(places.take()).toBeUndefined();
    a.release();
    w.release();
    await settle();
    expect(ws.count).toBe(0);
    expect([places.held, places.waiting]).toEqual([0, 0]);
  });
});
