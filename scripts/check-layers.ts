/**
 * Keeps the import graph as docs/architecture.md ("Source layout") draws it,
 * and keeps the fast commands light. Run by `npm test` (test/scripts/check-layers.test.ts)
 * and by hand: `bun scripts/check-layers.ts [ROOT]`, where ROOT holds src/
 * (the repository by default). Prints each violation and exits 1 when there
 * is one.
 *
 * Layers, lowest first: `util` (and the leaf files directly in src/, such as
 * version.ts) <- `global` <- `daemon`, `cleanup` (shared by the roles) <- the
 * role folders (cmd, master, smtpd, pickup, qmgr, smtp, local, virtual, bounce; an
 * unlisted folder counts as a role). A file may import its own
 * folder and lower layers only: no role imports another role, `cmd/` never
 * imports a daemon folder, and nothing imports the entry files main.ts,
 * roles.ts and dispatch.ts except those three. Type-only imports count (they
 * are still a dependency of the design); `import("...")` with a literal
 * counts too.
 *
 * Lazy modules: from the module of the queue manager, no static import may reach
 * LAZY_AGENTS (the SMTP client, the DNS resolver), and from the module of any
 * daemon role (roles.ts's `internal: true` entries) none may reach
 * LAZY_TABLE_BACKENDS (issue 16: memory per process).
 *
 * Light paths: following only static imports (what loads before a role's
 * main runs) from src/main.ts and from the module roles.ts names for
 * `sendmail` and `postconf`, into node_modules as well, neither mailauth nor
 * node:tls may be reachable, nor for sendmail the built-in modules in
 * STARTUP_FORBIDDEN (node:fs/promises, node:os: start-up time). The module
 * paths are read from roles.ts, so the check follows whatever roles.ts
 * points at.
 *
 * Trusts the tree it reads; reads files only.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, extname, join, relative, resolve, sep } from "node:path";

/** Folders below the roles; each may import only what is listed. */
const SHARED_LAYERS: Record<string, readonly string[]> = {
  util: ["util", "(base)"],
  "(base)": ["util", "(base)"],
  global: ["util", "(base)", "global"],
  daemon: ["util", "(base)", "global", "daemon", "cleanup"],
  cleanup: ["util", "(base)", "global", "daemon", "cleanup"],
};
export const ROLE_FOLDERS = ["cmd", "master", "smtpd", "pickup", "qmgr", "showq", "smtp", "local", "virtual", "pipe", "bounce"];
/**
 * In-process delivery agents: role folders that run inside another role's process, and the only roles
 * that may import them. The SMTP/LMTP client and the notification builder run in the queue manager;
 * the virtual and pipe agents run in the local service, which writes and runs commands for them through its worker layer.
 */
export const IN_PROCESS_AGENTS: Record<string, readonly string[]> = { smtp: ["qmgr"], bounce: ["qmgr"], virtual: ["local"], pipe: ["local"] };
/** Role folders that are daemons: cmd/ must not import them (nor src/daemon/). */
const DAEMON_FOLDERS = new Set(["daemon", ...ROLE_FOLDERS.filter((f) => f !== "cmd")]);
const ENTRY_FILES = new Set(["main.ts", "roles.ts", "dispatch.ts"]);

/**
 * Daemon roles that load an in-process agent only when a delivery needs it (issue 16: an idle queue manager
 * that has never relayed does not hold the SMTP client, TLS, DANE and MTA-STS, nor the DNS resolver with
 * node:dgram): no static import path from the role's module may reach these folders or files.
 */
export const LAZY_AGENTS: Record<string, readonly string[]> = { qmgr: ["src/smtp/", "src/global/dns/resolver.ts", "src/global/dns/transport.ts"] };

/**
 * Table backends with heavy clients (the LDAP client, Bun's SQL client), loaded on the first open of a
 * table of their type through `import()` in src/global/tables/open-table.ts (issue 16: memory per process):
 * no static import path from any daemon role's module (an `internal: true` entry of roles.ts) may reach them.
 */
export const LAZY_TABLE_BACKENDS: readonly string[] = [
  "src/global/tables/ldap/",
  "src/global/tables/sql-table.ts",
  "src/global/tables/mysql-table.ts",
  "src/global/tables/pgsql-table.ts",
];

/** Roles whose start must stay light, and what they must never load. */
export const LIGHT_ROLES = ["sendmail", "postconf"];
export const HEAVY_MODULES = ["mailauth", "node:tls", "tls"];
/**
 * Bun's built-in modules a role's start does without, beyond HEAVY_MODULES (issue 16): each costs
 * about half a millisecond to a millisecond of sendmail's ~25 ms floor, and sendmail needs none of
 * them (queue files are written synchronously; the host name comes from the configuration, node:os
 * only when asked, through src/util/os-lazy.ts).
 */
export const STARTUP_FORBIDDEN: Record<string, readonly string[]> = {
  sendmail: ["node:fs/promises", "fs/promises", "node:events", "events", "node:os", "os"],
};

export interface ImportRef {
  specifier: string;
  line: number;
  typeOnly: boolean;
  dynamic: boolean;
}

export interface LayerReport {
  /** Files under src/ that were read. */
  files: number;
  violations: string[];
  /** For each light role: the files and packages its static imports reach. */
  reach: Record<string, string[]>;
}

/** The imports of a TypeScript/JavaScript source: static, re-exports, side-effect, require() and import() with literals. */
export function scanImports(text: string): ImportRef[] {
  const refs: ImportRef[] = [];
  const lineAt = (index: number) => text.slice(0, index).split("\n").length;
  const patterns: Array<[RegExp, (m: RegExpExecArray) => Omit<ImportRef, "line">]> = [
    // import x from "y"; import { a, b } from "y"; export * from "y"; import type { T } from "y"
    [
      /^[ \t]*(import|export)\s+(type\s+)?(?:[^'";]*?\s+)?from\s*["']([^"']+)["']/gm,
      (m) => ({ specifier: m[3]!, typeOnly: !!m[2], dynamic: false }),
    ],
    // import "y";
    [/^[ \t]*import\s*["']([^"']+)["']/gm, (m) => ({ specifier: m[1]!, typeOnly: false, dynamic: false })],
    // require("y")
    [/\brequire\(\s*["']([^"']+)["']\s*\)/g, (m) => ({ specifier: m[1]!, typeOnly: false, dynamic: false })],
    // import("y")
    [/\bimport\(\s*["']([^"']+)["']\s*\)/g, (m) => ({ specifier: m[1]!, typeOnly: false, dynamic: true })],
  ];
  for (const [re, make] of patterns) {
    for (const m of text.matchAll(re)) refs.push({ ...make(m as RegExpExecArray), line: lineAt(m.index!) });
  }
  return refs.sort((a, b) => a.line - b.line);
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (/\.(ts|tsx|js|mjs)$/.test(entry.name) && !entry.name.endsWith(".d.ts")) out.push(path);
  }
  return out.sort();
}

/** The layer of a file under src/: its first folder, "(base)" for a leaf file in src/, "(entry)" for main/roles/dispatch. */
function layerOf(srcDir: string, file: string): string {
  const rel = relative(srcDir, file).split(sep);
  if (rel.length === 1) return ENTRY_FILES.has(rel[0]!) ? "(entry)" : "(base)";
  return rel[0]!;
}

/** Why `from` may not import `to`, or undefined when it may. */
function layerViolation(from: string, to: string): string | undefined {
  if (from === "(entry)") return undefined;
  if (to === "(entry)") return "nothing below the entry files imports main.ts, roles.ts or dispatch.ts";
  if (from === to) return undefined;
  const allowed = SHARED_LAYERS[from];
  if (allowed) {
    if (allowed.includes(to)) return undefined;
    return from === "util" || from === "(base)"
      ? `${from === "util" ? "src/util/" : "a leaf file in src/"} imports nothing outside src/util/`
      : `src/${from}/ may import only ${allowed.map((l) => (l === "(base)" ? "leaf files in src/" : `src/${l}/`)).join(", ")}`;
  }
  // a role folder (listed or not)
  if (from === "cmd" && DAEMON_FOLDERS.has(to)) return "cmd/ never imports a daemon folder";
  if (SHARED_LAYERS[to]) return undefined;
  const hosts = IN_PROCESS_AGENTS[to];
  if (hosts) return hosts.includes(from) ? undefined : `src/${to}/ runs inside ${hosts.map((h) => `src/${h}/`).join(", ")} and only there`;
  return "no role folder imports another role folder";
}

/** Resolves a relative specifier to a file under src/ (the .ts suffix may be given or not). */
function resolveRelative(fromFile: string, specifier: string): string | undefined {
  const base = resolve(dirname(fromFile), specifier);
  for (const candidate of [base, `${base}.ts`, `${base}.js`, join(base, "index.ts"), join(base, "index.js")]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}

function isBuiltin(specifier: string): boolean {
  return specifier.startsWith("node:") || specifier.startsWith("bun:") || specifier === "bun" || builtinModules.includes(specifier.split("/")[0]!);
}

function packageName(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

/** The text of roles.ts's entry for `role` (its object, braces in strings skipped). */
function roleEntryText(rolesText: string, role: string): string {
  const key = new RegExp(`(?:^|[\\s{,])(?:"${role}"|'${role}'|${role})\\s*:\\s*\\{`, "m").exec(rolesText);
  if (!key) throw new Error(`roles.ts: no entry for "${role}"`);
  let depth = 0;
  let end = key.index + key[0].length - 1;
  for (let i = end; i < rolesText.length; i++) {
    const c = rolesText[i]!;
    if (c === '"' || c === "'" || c === "`") {
      const close = rolesText.indexOf(c, i + 1);
      i = close < 0 ? rolesText.length : close;
    } else if (c === "{") depth++;
    else if (c === "}" && --depth === 0) {
      end = i;
      break;
    }
  }
  return rolesText.slice(key.index, end + 1);
}

/** The roles roles.ts marks `internal: true`: the daemons the master (or local) starts. */
export function daemonRoles(rolesText: string): string[] {
  const names = [...rolesText.matchAll(/(?:^|[\s{,])(?:"([\w-]+)"|'([\w-]+)'|([A-Za-z_][\w]*))\s*:\s*\{/gm)].map((m) => m[1] ?? m[2] ?? m[3]!);
  return [...new Set(names)].filter((name) => /\binternal\s*:\s*true\b/.test(roleEntryText(rolesText, name)));
}

/** The module path roles.ts gives `role`: `load: () => import("...")`, or a constant that holds such a function. */
export function roleModule(rolesText: string, role: string): string {
  const body = roleEntryText(rolesText, role);
  const load = /\bload\s*:\s*([^,}]+(?:\([^)]*\)[^,}]*)?)/.exec(body)?.[1]?.trim();
  if (!load) throw new Error(`roles.ts: the entry for "${role}" has no load`);
  const inline = /import\(\s*["']([^"']+)["']\s*\)/.exec(load);
  if (inline) return inline[1]!;
  if (/^[A-Za-z_$][\w$]*$/.test(load)) {
    const def = new RegExp(`(?:const|let|var)\\s+${load.replace(/\$/g, "\\$")}\\s*=[^;\\n]*?import\\(\\s*["']([^"']+)["']\\s*\\)`).exec(rolesText);
    if (def) return def[1]!;
  }
  throw new Error(`roles.ts: cannot tell which module the "${role}" entry loads (load: ${load})`);
}

/** Static closure from `starts`: src files and, through node_modules, package files; returns labels of what is reached. */
function staticClosure(srcDir: string, starts: string[]): { reached: string[]; paths: Map<string, string> } {
  const transpiler = new Bun.Transpiler({ loader: "js" });
  const seen = new Set<string>();
  const labels = new Set<string>();
  /** label or file (relative to the root) -> how it was reached, for the error message */
  const paths = new Map<string, string>();
  const queue: Array<{ file: string; via: string }> = starts.map((file) => ({ file, via: relative(dirname(srcDir), file) }));
  while (queue.length) {
    const { file, via } = queue.shift()!;
    if (seen.has(file)) continue;
    seen.add(file);
    paths.set(relative(dirname(srcDir), file), via);
    const text = readFileSync(file, "utf8");
    const inSrc = !relative(srcDir, file).startsWith("..");
    let refs: Array<{ specifier: string }>;
    if (inSrc) refs = scanImports(text).filter((r) => !r.typeOnly && !r.dynamic);
    else {
      try {
        refs = transpiler
          .scanImports(text)
          .filter((r) => r.kind === "import-statement" || r.kind === "require-call")
          .map((r) => ({ specifier: r.path }));
      } catch {
        refs = scanImports(text).filter((r) => !r.dynamic);
      }
    }
    for (const { specifier } of refs) {
      const label = specifier.startsWith(".") || specifier.startsWith("/") ? undefined : isBuiltin(specifier) ? specifier : packageName(specifier);
      if (label) {
        labels.add(label);
        if (!paths.has(label)) paths.set(label, `${via} -> ${specifier}`);
        // builtins have no files; a heavy package is reported as it is, without reading all of it
        if (isBuiltin(specifier) || HEAVY_MODULES.includes(label)) continue;
      }
      let target: string | undefined;
      if (label) {
        try {
          target = Bun.resolveSync(specifier, dirname(file));
        } catch {
          target = undefined;
        }
      } else target = resolveRelative(file, specifier);
      if (target && /\.(ts|js|mjs|cjs)$/.test(extname(target)) && !seen.has(target)) {
        queue.push({ file: target, via: `${via} -> ${inSrc && !label ? relative(dirname(srcDir), target) : specifier}` });
      }
    }
  }
  const reached = [...[...seen].map((f) => relative(dirname(srcDir), f)), ...labels].sort();
  return { reached, paths };
}

export function checkLayers(root: string): LayerReport {
  const srcDir = join(resolve(root), "src");
  const files = sourceFiles(srcDir);
  const violations: string[] = [];
  for (const file of files) {
    const fromLayer = layerOf(srcDir, file);
    for (const ref of scanImports(readFileSync(file, "utf8"))) {
      if (!ref.specifier.startsWith(".")) continue;
      const target = resolve(dirname(file), ref.specifier);
      if (relative(srcDir, target).startsWith("..")) {
        violations.push(`${relative(root, file)}:${ref.line}: imports "${ref.specifier}" from outside src/`);
        continue;
      }
      const why = layerViolation(fromLayer, layerOf(srcDir, target));
      if (why) violations.push(`${relative(root, file)}:${ref.line}: imports "${ref.specifier}": ${why}`);
    }
  }

  const reach: Record<string, string[]> = {};
  const rolesPath = join(srcDir, "roles.ts");
  const rolesText = readFileSync(rolesPath, "utf8");
  /** The module roles.ts names for `role`, or undefined with the reason added to the violations. */
  const roleEntry = (role: string): string | undefined => {
    let module: string;
    try {
      module = roleModule(rolesText, role);
    } catch (err) {
      violations.push((err as Error).message);
      return undefined;
    }
    const entry = resolveRelative(rolesPath, module);
    if (!entry) violations.push(`roles.ts: the module of "${role}" (${module}) does not exist`);
    return entry;
  };
  for (const role of LIGHT_ROLES) {
    const entry = roleEntry(role);
    if (!entry) continue;
    const { reached, paths } = staticClosure(srcDir, [join(srcDir, "main.ts"), entry].filter(existsSync));
    reach[role] = reached;
    for (const heavy of [...HEAVY_MODULES, ...(STARTUP_FORBIDDEN[role] ?? [])]) {
      if (reached.includes(heavy)) violations.push(`${role}: "${heavy}" is reachable through static imports: ${paths.get(heavy)}`);
    }
  }
  for (const [role, folders] of Object.entries(LAZY_AGENTS)) {
    const entry = roleEntry(role);
    if (!entry) continue;
    const { reached } = staticClosure(srcDir, [entry]);
    reach[role] = reached;
    for (const folder of folders) {
      const first = reached.find((f) => f.startsWith(folder));
      if (first) violations.push(`${role}: ${folder} must be loaded on demand (import()), but ${first} is reachable through static imports`);
    }
  }
  for (const role of daemonRoles(rolesText)) {
    const entry = roleEntry(role);
    if (!entry) continue;
    const { reached, paths } = staticClosure(srcDir, [entry]);
    reach[role] ??= reached;
    // one line per role: the first backend file reached, and how
    const first = reached.find((f) => LAZY_TABLE_BACKENDS.some((b) => f.startsWith(b)));
    if (first) violations.push(`${role}: the table backend ${first} must be loaded on first open (import() in open-table.ts), but is reachable through static imports: ${paths.get(first)}`);
  }
  return { files: files.length, violations, reach };
}

if (import.meta.main) {
  const root = resolve(process.argv[2] ?? join(import.meta.dir, ".."));
  const report = checkLayers(root);
  for (const v of report.violations) console.error(`check-layers: ${v}`);
  if (report.violations.length) {
    console.error(`check-layers: ${report.violations.length} violation(s) in ${report.files} files under ${join(root, "src")}`);
    process.exit(1);
  }
  const startup = Object.entries(STARTUP_FORBIDDEN).map(([role, mods]) => `; ${role} statically imports none of ${mods.filter((m) => m.startsWith("node:")).join(", ")}`);
  console.log(`check-layers: ${report.files} files, layers respected; ${LIGHT_ROLES.join(" and ")} reach neither ${HEAVY_MODULES.join(" nor ")}${startup.join("")}`);
}
