/**
 * TCP ports for tests: one that nobody listens on right now, on 127.0.0.1,
 * for a server that cannot be told to pick its own or for a relayhost that
 * must refuse connections. Runs in the test process as whoever runs the
 * tests.
 */

/** A TCP port on 127.0.0.1 nobody listens on right now (the system picked it, then it was closed). */
export function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}
