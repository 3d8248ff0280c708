/** The layering check (scripts/check-layers.ts): the real tree passes, and a fixture tree with violations is caught. */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { checkLayers, daemonRoles, roleModule, scanImports } from "../../scripts/check-layers.ts";
import { ROOT } from "../helpers/run.ts";

const FIXTURE = join(ROOT, "test/fixtures/layers-bad");

async function cli(root?: string) {
  const proc = Bun.spawn([process.execPath, join(ROOT, "scripts/check-layers.ts"), ...(root ? [root] : [])], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, BUN_BE_BUN: undefined, BUN_OPTIONS: undefined },
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

describe("the repository", () => {
  const report = checkLayers(ROOT);

  test("src/ keeps the layers of docs/architecture.md", () => {
    expect(report.files).toBeGreaterThan(20);
    expect(report.violations).toEqual([]);
  });

  test("sendmail and postconf start without mailauth or TLS", () => {
    for (const role of ["sendmail", "postconf"]) {
      const reached = report.reach[role]!;
      expect(reached).toContain("src/main.ts");
      expect(reached).toContain("src/util/sysexits.ts");
      for (const heavy of ["mailauth", "node:tls", "tls"]) expect(reached).not.toContain(heavy);
    }
    expect(report.reach.postconf).toContain("src/cmd/postconf/main.ts");
    expect(report.reach.postconf).toContain("smol-toml");
  });

  test("the queue manager loads the SMTP client on demand only", () => {
    expect(report.reach.qmgr).toContain("src/qmgr/main.ts");
    expect(report.reach.qmgr).toContain("src/qmgr/agents.ts");
    expect(report.reach.qmgr!.filter((f) => f.startsWith("src/smtp/"))).toEqual([]);
  });

  test("no daemon statically reaches the LDAP or SQL table backends, nor the queue manager the DNS resolver (issue 16: memory)", () => {
    const roles = ["master", "qmgr", "showq", "pickup", "smtpd", "local", "local-worker"];
    for (const role of roles) {
      expect(report.reach[role]).toBeDefined();
      const backends = report.reach[role]!.filter((f) => f.startsWith("src/global/tables/ldap/") || /src\/global\/tables\/(sql|mysql|pgsql)-table\.ts$/.test(f));
      expect({ role, backends }).toEqual({ role, backends: [] });
    }
    expect(report.reach.smtpd).toContain("src/global/tables/open-table.ts");
    expect(report.reach.qmgr).toContain("src/global/tables/open-table.ts");
    expect(report.reach.qmgr!.filter((f) => /src\/global\/dns\/(resolver|transport)\.ts$/.test(f))).toEqual([]);
  });

  test("sendmail starts without node:fs/promises, node:events and node:os (issue 16: start-up time)", () => {
    const reached = report.reach.sendmail!;
    expect(reached).toContain("src/cmd/sendmail/main.ts");
    expect(reached).toContain("src/global/queue/commit.ts");
    expect(reached).toContain("node:fs");
    for (const builtin of ["node:fs/promises", "fs/promises", "node:events", "events", "node:os", "os"]) expect(reached).not.toContain(builtin);
  });

  test("the command line version passes", async () => {
    const r = await cli();
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("layers respected");
  });
});

describe("a tree with violations (test/fixtures/layers-bad)", () => {
  test("each violation is reported with its file and line", () => {
    expect(checkLayers(FIXTURE).violations).toEqual([
      'src/cmd/uses-daemon.ts:2: imports "../daemon/skeleton.ts": cmd/ never imports a daemon folder',
      'src/cmd/uses-smtpd.ts:2: imports "../smtpd/server.ts": cmd/ never imports a daemon folder',
      'src/global/imports-entry.ts:2: imports "../roles.ts": nothing below the entry files imports main.ts, roles.ts or dispatch.ts',
      'src/pickup/main.ts:2: imports "../qmgr/queue.ts": no role folder imports another role folder',
      'src/smtpd/server.ts:7: imports "../qmgr/queue.ts": no role folder imports another role folder',
      'src/smtpd/uses-smtp-agent.ts:2: imports "../smtp/agent.ts": src/smtp/ runs inside src/qmgr/ and only there',
      'src/util/bad-util.ts:3: imports "../global/thing.ts": src/util/ imports nothing outside src/util/',
      'sendmail: "mailauth" is reachable through static imports: src/cmd/sendmail.ts -> src/cmd/sign.ts -> src/global/dkim.ts -> mailauth',
      'sendmail: "node:fs/promises" is reachable through static imports: src/cmd/sendmail.ts -> node:fs/promises',
      'postconf: "node:tls" is reachable through static imports: src/cmd/postconf.ts -> node:tls',
      "qmgr: src/smtp/ must be loaded on demand (import()), but src/smtp/agent.ts is reachable through static imports",
      "smtpd: the table backend src/global/tables/ldap/ldap-table.ts must be loaded on first open (import() in open-table.ts), but is reachable through static imports: src/smtpd/server.ts -> src/daemon/skeleton.ts -> src/global/tables/open-table.ts -> src/global/tables/ldap/ldap-table.ts",
    ]);
  });

  test("a dynamic import() and a type-only import are not followed for the light roles", () => {
    const reach = checkLayers(FIXTURE).reach;
    expect(reach.postconf).toContain("node:tls");
    expect(reach.postconf).not.toContain("mailauth");
    expect(reach.postconf).not.toContain("node:net");
  });

  test("the command line version exits 1 and lists them", async () => {
    const r = await cli(FIXTURE);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("check-layers: 12 violation(s)");
    expect(r.stderr).toContain("src/util/bad-util.ts:3");
  });
});

describe("roleModule", () => {
  test("an inline lazy import and a constant that holds one", () => {
    const roles = `const notYet = () => import("./cmd/not-yet.ts");
export const ROLES = {
  sendmail: { summary: "Sendmail {x}", load: notYet, symlink: true },
  "postconf": { summary: "Show", load: () => import("./cmd/postconf/main.ts"), symlink: true },
  postlog: { load: async () => await import('./cmd/postlog.ts'), summary: "log" },
};`;
    expect(roleModule(roles, "sendmail")).toBe("./cmd/not-yet.ts");
    expect(roleModule(roles, "postconf")).toBe("./cmd/postconf/main.ts");
    expect(roleModule(roles, "postlog")).toBe("./cmd/postlog.ts");
  });

  test("daemonRoles lists the internal entries, quoted or not", () => {
    const roles = `export const ROLES = {
  sendmail: { summary: "Sendmail {x}", load: () => import("./a.ts"), symlink: true },
  qmgr: { summary: "queue {manager}", load: () => import("./qmgr/main.ts"), internal: true },
  "local-worker": { summary: "worker", internal: true, load: () => import("./w.ts") },
  install: { summary: "x", load: async () => ({ main: (await import("./i.ts")).m }) },
};`;
    expect(daemonRoles(roles)).toEqual(["qmgr", "local-worker"]);
  });

  test("a role it cannot find or understand is an error, not a pass", () => {
    expect(() => roleModule("export const ROLES = {};", "sendmail")).toThrow('no entry for "sendmail"');
    expect(() => roleModule("export const ROLES = { sendmail: { load: pick(1) } };", "sendmail")).toThrow("cannot tell which module");
  });
});

describe("scanImports", () => {
  test("every static form, type-only marked, dynamic marked, with lines", () => {
    const text = [
      'import a from "./a.ts";',
      'import { b,',
      '  c } from "./bc.ts";',
      'import * as d from "node:fs";',
      'import type { T } from "./t.ts";',
      'export { e } from "./e.ts";',
      'export * from "./f.ts";',
      'export type { U } from "./u.ts";',
      'import "./side-effect.ts";',
      'const g = require("./g.js");',
      'const h = await import("./h.ts");',
      'const notAnImport = "import x from y";',
    ].join("\n");
    expect(scanImports(text).map((r) => [r.line, r.specifier, r.typeOnly, r.dynamic])).toEqual([
      [1, "./a.ts", false, false],
      [2, "./bc.ts", false, false],
      [4, "node:fs", false, false],
      [5, "./t.ts", true, false],
      [6, "./e.ts", false, false],
      [7, "./f.ts", false, false],
      [8, "./u.ts", true, false],
      [9, "./side-effect.ts", false, false],
      [10, "./g.js", false, false],
      [11, "./h.ts", false, true],
    ]);
  });
});
