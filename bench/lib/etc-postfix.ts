/**
 * Lists the private Postfix config directory in `alternate_config_directories`
 * of the default /etc/postfix/main.cf, and puts that file back as it was
 * when the harness ends. Postfix's set-gid programs (postdrop, postqueue)
 * refuse a non-default config directory that is not listed there.
 *
 * Runs as root. Restoring: when the file still holds exactly what we wrote,
 * the original is put back byte for byte (or removed when there was none);
 * when someone changed it meanwhile, only our line is taken out again.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { onCleanup } from "./cleanup.ts";

export const DEFAULT_MAIN_CF = "/etc/postfix/main.cf";
const MARK = "# added by postern bench/, removed when it ends";

/** Adds `dir` to alternate_config_directories (keeping any value already there); returns the undo. */
export function allowAlternateConfigDirectory(dir: string, mainCf = DEFAULT_MAIN_CF): () => void {
  const existed = existsSync(mainCf);
  const original = existed ? readFileSync(mainCf, "utf8") : "";
  const current = lastValue(original, "alternate_config_directories");
  const value = current ? `${current} ${dir}` : dir;
  const ours = `${MARK}\nalternate_config_directories = ${value}\n`;
  const written = (original && !original.endsWith("\n") ? original + "\n" : original) + ours;
  writeAtomically(mainCf, written);
  return onCleanup(`restore ${mainCf}`, () => {
    const now = existsSync(mainCf) ? readFileSync(mainCf, "utf8") : undefined;
    if (now === written) {
      if (existed) writeAtomically(mainCf, original);
      else rmSync(mainCf, { force: true });
    } else if (now?.includes(ours)) {
      process.stderr.write(`bench: ${mainCf} changed while the benchmark ran; removing only our lines\n`);
      writeAtomically(mainCf, now.replace(ours, ""));
    }
  });
}

/** The value of the last `name = value` line (main.cf continuation lines are not needed here). */
function lastValue(text: string, name: string): string | undefined {
  let value: string | undefined;
  for (const line of text.split("\n")) {
    const m = new RegExp(`^${name}\\s*=\\s*(.*)$`).exec(line);
    if (m) value = m[1]!.trim();
  }
  return value;
}

function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.bench-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, path);
}
