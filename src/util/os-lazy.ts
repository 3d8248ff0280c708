/**
 * node:os, loaded on first use. Evaluating the module costs about half a
 * millisecond at start, which a short-lived command such as sendmail pays
 * for nothing when the configuration names the host (issue 16); the log and
 * the host defaults ask through here, only when they need an answer.
 *
 * Runs in every role and command; takes no input.
 */
type Os = typeof import("node:os");

let os: Os | undefined;

function nodeOs(): Os {
  return (os ??= process.getBuiltinModule("node:os") as Os);
}

/** gethostname(2), as os.hostname(). */
export function hostname(): string {
  return nodeOs().hostname();
}

/** The interfaces and their addresses, as os.networkInterfaces(). */
export function networkInterfaces(): ReturnType<Os["networkInterfaces"]> {
  return nodeOs().networkInterfaces();
}
