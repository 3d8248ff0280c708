/**
 * Builds dist/postern, one executable for every role, and links the command
 * names beside it. The --no-compile-autoload-* flags are a security
 * requirement: without them the binary would read .env and run bunfig.toml
 * preload scripts from whatever directory sendmail is started in.
 */
import { mkdirSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { SYMLINK_NAMES } from "../src/roles.ts";

const root = join(import.meta.dir, "..");
const dist = join(root, "dist");
mkdirSync(dist, { recursive: true });

const args = [
  "build", "--compile", "--minify", "--bytecode", "--format=esm",
  "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig",
  join(root, "src/main.ts"), "--outfile", join(dist, "postern"),
];
const proc = Bun.spawnSync([process.execPath, ...args], { cwd: root, stdout: "inherit", stderr: "inherit" });
if (proc.exitCode !== 0) {
  console.error(`build: bun build failed with status ${proc.exitCode}`);
  process.exit(1);
}
for (const name of SYMLINK_NAMES) {
  const link = join(dist, name);
  rmSync(link, { force: true });
  symlinkSync("postern", link);
}
console.log(`build: dist/postern and ${SYMLINK_NAMES.length} command links (${SYMLINK_NAMES.join(", ")})`);
