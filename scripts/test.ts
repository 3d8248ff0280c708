/**
 * Runs the type checker (tsc) and the linter (biome) first, then the test
 * suite with `bun test`; passes their output through and ends with the plain
 * line CI reads: `N passed, N failed`. A type or lint error fails the run
 * before any test (`0 passed, 1 failed`, exit 1). bun's own summary goes to
 * stderr and is not a line CI counts. The exit status is bun's (non-zero
 * when a test fails, a file fails to load, or no test ran).
 * `bun scripts/test.ts FILE...` runs only those test files, without the gate.
 */
const root = `${import.meta.dir}/..`;
const extra = process.argv.slice(2);

if (extra.length === 0) {
  for (const [what, argv] of [
    ["type check", [`${root}/node_modules/.bin/tsc`, "--noEmit", "-p", root]],
    ["lint", [`${root}/node_modules/.bin/biome`, "lint", "--error-on-warnings", root]],
  ] as const) {
    const gate = Bun.spawnSync([...argv], { cwd: root, stdout: "inherit", stderr: "inherit", stdin: "ignore" });
    if (gate.exitCode !== 0) {
      console.log(`${what} failed (npm run ${what === "lint" ? "lint" : "typecheck"} shows it)`);
      console.log("0 passed, 1 failed");
      process.exit(1);
    }
    console.log(`${what}: ok`);
  }
}
const proc = Bun.spawn([process.execPath, "test", "--timeout", "120000", ...extra], {
  cwd: root,
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
