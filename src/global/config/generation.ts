/**
 * The lifetime of one configuration inside a daemon, from its loadConfig()
 * until a reload has replaced it and the last piece of work that started
 * with it (an SMTP session, a delivery, a pickup pass, a request) has ended.
 * A generation is the configuration file as read once: every
 * withOverrides() view of it (a service's -o overrides, smtpd's stress view)
 * belongs to the same one.
 *
 * Whatever a daemon builds for one configuration and must give back (the
 * tables openTable() hands out, a Dovecot auth connection, an SMTP client's
 * cached sessions) registers a release with onConfigReleased(); work holds
 * the generation with holdConfig() while it runs; the reload calls
 * retireConfig() for the configuration it replaces (the daemon skeleton
 * does, src/daemon/skeleton.ts). The releases run once the generation is
 * retired and nobody holds it, never earlier, so nothing still in use is
 * closed under its user. Work that starts again with a released generation
 * (a reload that failed half-way keeps the old settings) simply makes it
 * hold resources again: they are released when that work ends.
 *
 * Runs in every daemon, with the daemon's own privileges. No input: the
 * callers are the daemon's own code.
 */
import { log } from "../../util/log.ts";
import type { Config } from "./config.ts";

/** One configuration's generation: who holds it, whether a reload replaced it, what it must give back. */
export interface Generation {
  users: number;
  retired: boolean;
  readonly releases: Set<() => void>;
}

const generations = new WeakMap<object, Generation>();

/** The generation `config` belongs to (its withOverrides() views share it). */
export function generationOf(config: Config): Generation {
  let g = generations.get(config.source);
  if (!g) generations.set(config.source, (g = { users: 0, retired: false, releases: new Set() }));
  return g;
}

function releaseIfDone(g: Generation): void {
  if (!g.retired || g.users > 0) return;
  const releases = [...g.releases];
  g.releases.clear();
  for (const release of releases) {
    try {
      release();
    } catch (err) {
      log.warn(`after a reload: cannot release a resource of the old configuration: ${(err as Error).message}`);
    }
  }
}

/**
 * Marks work that runs with `config` (a session, a delivery, a pass); the
 * returned function ends it (a second call does nothing).
 */
export function holdConfig(config: Config): () => void {
  const g = generationOf(config);
  g.users++;
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    g.users--;
    releaseIfDone(g);
  };
}

/** A reload replaced `config`: its resources are released now if no work holds it, else when the last work ends. */
export function retireConfig(config: Config): void {
  const g = generationOf(config);
  g.retired = true;
  releaseIfDone(g);
}

/**
 * Runs `release` once `config`'s generation is retired and unused (once:
 * what is used again afterwards registers again).
 */
export function onConfigReleased(config: Config, release: () => void): void {
  generationOf(config).releases.add(release);
}
