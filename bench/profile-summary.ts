/**
 * Summarises CPU profiles (`.cpuprofile`, from a daemon or command run with
 * `BUN_OPTIONS="--cpu-prof --cpu-prof-dir=DIR"` on a non-minified build):
 * the share of samples in each function itself ("self") and with what it
 * calls ("total"), over every profile in DIR. Counts samples rather than
 * summing their time deltas: a sample taken after the process sat
 * descheduled on a loaded machine carries the whole gap, which made a
 * once-a-second timer look like 10 % of smtpd. Reads only DIR.
 *   bun bench/profile-summary.ts DIR [TOP]
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

const dir = process.argv[2];
const top = Number(process.argv[3] ?? 30);
if (!dir) {
  console.error("usage: bun bench/profile-summary.ts DIR [TOP]");
  process.exit(64);
}
const self = new Map<string, number>();
const total = new Map<string, number>();
let samples = 0;
const add = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
for (const name of readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"))) {
  const profile = JSON.parse(readFileSync(join(dir, name), "utf8")) as { nodes: ProfileNode[]; samples: number[] };
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n: ProfileNode) => `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.split("/").at(-1)}:${n.callFrame.lineNumber}`;
  for (const s of profile.samples) {
    samples++;
    add(self, label(nodes.get(s)!));
    const seen = new Set<string>();
    for (let cur: number | undefined = s; cur !== undefined; cur = parent.get(cur)) {
      const k = label(nodes.get(cur)!);
      if (!seen.has(k)) add(total, k);
      seen.add(k);
    }
  }
}
const show = (title: string, m: Map<string, number>) => {
  console.log(title);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((100 * v) / samples).toFixed(2).padStart(6)} %  ${k}`);
};
console.log(`${samples} samples`);
show("self:", self);
show("total (with callees):", total);
