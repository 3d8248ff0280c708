/**
 * Runs the test suite with `bun test`, passes its output through, and ends
 * with the plain line CI reads: `N passed, N failed`. bun's own summary goes
 * to stderr and is not a line CI counts. The exit status is bun's (non-zero
 * when a test fails, a file fails to load, or no test ran).
 */
const extra = process.argv.slice(2);
const proc = Bun.spawn([process.execPath, "test", "--timeout", "120000", ...extra], {
  cwd: `${import.meta.dir}/..`,
  stdout: "inherit",
  stderr: "pipe",
  stdin: "ignore",
  env: { ...process.env, BUN_BE_BUN: undefined, BUN_OPTIONS: undefined },
});

let tail = "";
const decoder = new TextDecoder();
for await (const chunk of proc.stderr) {
  process.stderr.write(chunk);
  tail = (tail + decoder.decode(chunk, { stream: true })).slice(-8192);
}
const status = await proc.exited;

const count = (word: string) => Number(new RegExp(`^\\s*(\\d+) ${word}\\b`, "m").exec(tail)?.[1] ?? 0);
const passed = count("pass");
const failed = count("fail") + count("error");
const failedTotal = status !== 0 && failed === 0 ? 1 : failed;
console.log(`${passed} passed, ${failedTotal} failed`);
process.exit(status);
