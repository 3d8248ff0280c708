/**
 * Prints a scenario's results: a table with each side's median and spread
 * (p10/p90, min/max) and the postern/Postfix ratio of the medians, the
 * notes, and one machine-readable line `BENCH-JSON {...}` on stdout.
 */
import type { MachineFacts } from "./context.ts";
import { isUnavailable, type Measurement, type ScenarioResult, type Side } from "./scenario.ts";

export interface Report {
  scenario: string;
  date: string;
  options: { runs: number; warmup: number; submitter: string };
  machine: MachineFacts;
  result: ScenarioResult;
}

export function ratioOf(m: Measurement): number | undefined {
  if (isUnavailable(m.postfix) || isUnavailable(m.postern)) return undefined;
  return m.postern.median / m.postfix.median;
}

export function targetVerdict(m: Measurement): string {
  const ratio = ratioOf(m);
  if (!m.target || ratio === undefined) return "";
  const met = m.target.kind === "at most" ? ratio <= m.target.ratio : ratio >= m.target.ratio;
  return `target ${m.target.kind} ${m.target.ratio}: ${met ? "met" : "missed"}`;
}

export function printReport(r: Report): void {
  const out: string[] = [];
  const { machine: mc } = r;
  out.push(`== ${r.scenario} (${r.date})`);
  out.push(`command: ${r.result.command}`);
  out.push(`runs: ${r.options.runs} per side and phase, interleaved, after ${r.options.warmup} warm-up runs`);
  out.push(`machine: ${mc.cores} cores (${mc.cpu}), Linux ${mc.kernel}, queues on ${mc.filesystem}; Postfix ${mc.postfixVersion}, postern ${mc.posternVersion}`);
  out.push(`postern binary: ${mc.posternBinary}, built ${mc.posternBuilt}; checkout ${mc.commit}`);
  out.push(`load average (1 min): ${mc.load.start.toFixed(2)} at start, ${mc.load.end?.toFixed(2) ?? "?"} at end`);
  out.push("");
  const header = ["measurement", "Postfix median [p10 p90] (min max)", "postern median [p10 p90] (min max)", "postern/Postfix"];
  const rows = r.result.measurements.map((m) => [
    `${m.name} (${m.unit})`,
    cell(m.postfix),
    cell(m.postern),
    ratioOf(m) === undefined ? "-" : `${ratioOf(m)!.toFixed(2)} ${targetVerdict(m) ? `(${targetVerdict(m)})` : ""}`.trim(),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  out.push(line(header));
  for (const row of rows) out.push(line(row));
  const unavailable = r.result.measurements.flatMap((m) =>
    (["postfix", "postern"] as const).flatMap((side) => (isUnavailable(m[side]) ? [`${m.name}, ${side}: ${(m[side] as { unavailable: string }).unavailable}`] : [])),
  );
  const notes = [...unavailable, ...r.result.measurements.flatMap((m) => (m.notes ?? []).map((n) => `${m.name}: ${n}`)), ...r.result.notes];
  if (notes.length) {
    out.push("");
    for (const n of notes) out.push(`- ${n}`);
  }
  out.push("");
  out.push(`BENCH-JSON ${JSON.stringify(toJson(r))}`);
  process.stdout.write(out.join("\n") + "\n");
}

function cell(side: Side): string {
  if (isUnavailable(side)) return "unavailable";
  const f = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  if (side.n === 1) return f(side.median);
  return `${f(side.median)} [${f(side.p10)} ${f(side.p90)}] (${f(side.min)} ${f(side.max)})`;
}

function toJson(r: Report) {
  const round = (x: number) => Math.round(x * 1000) / 1000;
  const sideJson = (s: Side) =>
    isUnavailable(s) ? s : { n: s.n, median: round(s.median), p10: round(s.p10), p90: round(s.p90), min: round(s.min), max: round(s.max), mean: round(s.mean) };
  return {
    scenario: r.scenario,
    date: r.date,
    options: r.options,
    machine: r.machine,
    command: r.result.command,
    measurements: r.result.measurements.map((m) => ({
      name: m.name,
      unit: m.unit,
      better: m.better,
      postfix: sideJson(m.postfix),
      postern: sideJson(m.postern),
      ratio: ratioOf(m) === undefined ? null : round(ratioOf(m)!),
      target: m.target ?? null,
      notes: m.notes ?? [],
    })),
    notes: r.result.notes,
  };
}
