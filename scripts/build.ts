/**
 * Builds dist/postern, one executable for every role, and links the command
 * names beside it. The --no-compile-autoload-* flags are a security
 * requirement: without them the binary would read .env and run bunfig.toml
 * preload scripts from whatever directory sendmail is started in.
 */
import { mkdirSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { symlinkNames } from "../src/roles.ts";
import { orderFiles } from "./bytecode-order.ts";

const root = join(import.meta.dir, "..");
// POSTERN_DIST lets parallel work build and test without overwriting each other's binary.
const dist = process.env.POSTERN_DIST ? resolve(process.env.POSTERN_DIST) : join(root, "dist");
mkdirSync(dist, { recursive: true });
const tmpOut = join(dist, `.postern.${process.pid}.tmp`);
// profile-guided bytecode layout: the functions a sendmail run uses go first, then the daemons' (scripts/bytecode-order.ts)
const orders = orderFiles();

const args = [
  "build", "--compile", "--minify", "--bytecode", "--format=esm", "--splitting",
  // short-lived commands (sendmail) do not live long enough to profit from the JIT; daemons turn
  // it back to normal with Bun.unsafe.setJITPolicy(1) (src/util/jit.ts)
  "--compile-jit-policy=100",
  ...(orders.length ? ["--bytecode-order", orders.join(",")] : []),
  "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig",
  join(root, "src/main.ts"), "--outfile", tmpOut,
];
const proc = Bun.spawnSync([process.execPath, ...args], { cwd: root, stdout: "inherit", stderr: "inherit" });
if (proc.exitCode !== 0) {
  console.error(`build: bun build failed with status ${proc.exitCode}`);
  rmSync(tmpOut, { force: true });
  process.exit(1);
}
// rename into place so a test running the old binary never sees a half-written one
renameSync(tmpOut, join(dist, "postern"));
for (const name of symlinkNames()) {
  const link = join(dist, name);
  rmSync(link, { force: true });
  symlinkSync("postern", link);
}
console.log(`build: ${dist}/postern and ${symlinkNames().length} command links (${symlinkNames().join(", ")})`);
