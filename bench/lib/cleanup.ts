/**
 * Undo actions the harness registers as it changes the machine (a started
 * Postfix, a written /etc/postfix/main.cf, a created user, a temp dir), run
 * last-registered first when the run ends: normally, on an exception, or
 * on SIGINT/SIGTERM/SIGHUP. Every action is synchronous (spawnSync, *Sync
 * file calls) so it also works from a signal handler and from `exit`.
 *
 * Runs as root (the harness needs it). Limits: SIGKILL of the harness skips
 * the undo; the next run finds a stale lock and says what to clean by hand.
 */

type Undo = { label: string; action: () => void };

const undos: Undo[] = [];
let installed = false;
let ran = false;

/** Registers an undo action; returns a function that runs it early (once) and unregisters it. */
export function onCleanup(label: string, action: () => void): () => void {
  installHandlers();
  const entry: Undo = { label, action };
  undos.push(entry);
  return () => {
    const i = undos.indexOf(entry);
    if (i < 0) return;
    undos.splice(i, 1);
    runOne(entry);
  };
}

/** Runs every registered undo action, newest first; safe to call more than once. */
export function runCleanup(): void {
  if (ran) return;
  ran = true;
  while (undos.length) runOne(undos.pop()!);
}

function runOne(entry: Undo): void {
  try {
    entry.action();
  } catch (err) {
    process.stderr.write(`bench: cleanup "${entry.label}" failed: ${(err as Error).message}\n`);
  }
}

function installHandlers(): void {
  if (installed) return;
  installed = true;
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      process.stderr.write(`bench: ${signal}: cleaning up\n`);
      runCleanup();
      process.exit(130);
    });
  }
  process.on("exit", () => runCleanup());
}
