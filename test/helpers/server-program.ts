/**
 * Whether a server program a test needs (mariadbd, postgres, slapd) is
 * installed. Outside CI a missing program skips the test with the reason;
 * with CI=true it is a failure that names the Debian package to install, so
 * CI never passes by skipping. Runs in the test process; reads nothing but
 * the file system.
 */
import { existsSync } from "node:fs";

/** Undefined when `program` exists; otherwise the reason to skip (throws in CI). */
export function missingServer(program: string | undefined, what: string, debianPackage: string): string | undefined {
  if (program && existsSync(program)) return undefined;
  const reason = `${what} is not installed (Debian package ${debianPackage})`;
  if (process.env.CI === "true") throw new Error(`${reason}: CI must install it (.ci/run)`);
  return reason;
}
