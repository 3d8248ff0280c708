/**
 * `postern install`: sets a server up in one command, and does nothing the
 * second time. It creates mail_owner, the configuration directory with a
 * commented postern.toml, the queue and data directories, /etc/aliases and
 * its index, the executable and its command links (sendmail, mailq,
 * newaliases, ...), a systemd unit and, when maillog_file is set, a
 * logrotate snippet; and records each thing it made in the install manifest
 * so that `postern uninstall` removes exactly those.
 *
 * Runs as root (a real install) or as anyone with --root DIR (a packager's
 * staging root: no account is created, none is looked up outside DIR, no
 * systemctl) or --dry-run (prints the actions, changes nothing). Distrusts
 * the files already in place: another program's file where a link or file
 * goes stops the install before any change, unless --replace, which moves
 * it aside and records the backup.
 */
import { existsSync, statSync } from "node:fs";
import { dirname, isAbsolute } from "node:path";
import { parse as parseToml } from "smol-toml";
import { Config, defaultsOnlyConfig, loadConfig } from "../../global/config/config.ts";
import { scanLayout } from "../../global/config/toml-layout.ts";
import { indexPathOf } from "../../global/tables/hash-index.ts";
import { INDEXED_TYPES } from "../../global/tables/open-table.ts";
import { log } from "../../util/log.ts";
import { writeStdout } from "../../util/stdio.ts";
import { ExitError, EX_CANTCREAT, EX_CONFIG, EX_NOPERM, EX_USAGE } from "../../util/sysexits.ts";
import { newaliasesCommand } from "../postalias/newaliases.ts";
import { fullSpec } from "../postmap/table-command.ts";
import { configTemplate } from "./config-template.ts";
import { readManifest, writeManifest, type ManifestEntry } from "./manifest.ts";
import { layoutFor, onDisk, parseInstallArgs, type InstallOptions, type Layout } from "./options.ts";
import { Planner } from "./plan.ts";
import { logrotateSnippet, systemdUnit } from "./service-files.ts";
import { checkAccountName, createUserCommand, groupExists, lookupUser, runAccountCommand } from "./system-user.ts";

export const ALIASES_TEXT = `# The alias table of local delivery: "name: destination, ...". After a change,
# run newaliases. See aliases(5).
postmaster: root
MAILER-DAEMON: postmaster
`;

/** The configuration install works with: the existing postern.toml, or the one it is about to write. */
function installConfig(layout: Layout, opts: InstallOptions): { config: Config; newText?: string } {
  const path = onDisk(layout, layout.configFile);
  if (existsSync(path)) {
    const config = loadConfig(path);
    for (const [name, value] of opts.params) {
      if (config.raw(name) !== value) {
        throw new ExitError(
          EX_USAGE,
          `${layout.configFile} exists and does not set ${name} = ${value}: change it with postconf -c ${layout.configDir} -e '${name} = ${value}'`,
        );
      }
    }
    return { config };
  }
  const text = configTemplate(new Map([...layout.prefixParams, ...opts.params]));
  const source = { directory: layout.configDir, path: layout.configFile, exists: true, text, document: parseToml(text) as Record<string, unknown>, layout: scanLayout(text) };
  return { config: new Config(source), newText: text };
}

function absoluteParam(config: Config, name: string): string {
  const value = config.str(name);
  if (!isAbsolute(value)) throw new ExitError(EX_CONFIG, `${name} = "${value}": install needs an absolute path`);
  return value;
}

/** The role's main, given the command names the executable answers to (src/roles.ts). */
export function installMain(linkNames: readonly string[]): (args: string[]) => Promise<number> {
  return (args) => install(args, linkNames);
}

async function install(args: string[], linkNames: readonly string[]): Promise<number> {
  const opts = parseInstallArgs(args, false);
  const layout = layoutFor(opts, linkNames);
  const root = process.geteuid?.() === 0;
  if (!opts.root && !opts.dryRun && !root) {
    throw new ExitError(EX_NOPERM, "postern install must run as root (or with --root DIR to fill a staging directory, or --dry-run)");
  }
  // run from source (bun src/main.ts), process.execPath is the Bun runtime, not postern
  if (!import.meta.path.startsWith("/$bunfs/")) {
    throw new ExitError(EX_USAGE, "postern install copies the executable it runs from: run it from the built one (dist/postern install)");
  }
  const { config, newText } = installConfig(layout, opts);
  const problems = config.validate();
  for (const p of problems) log.error(p.message);
  if (problems.length) throw new ExitError(EX_CONFIG, "refusing to install: fix the configuration errors above");

  const mailOwner = config.str("mail_owner");
  checkAccountName(mailOwner);
  const queueDirectory = absoluteParam(config, "queue_directory");
  const dataDirectory = absoluteParam(config, "data_directory");
  const maillogFile = config.str("maillog_file");

  const previous = readManifest(onDisk(layout, layout.manifest))?.entries ?? [];
  const plan = new Planner(layout, opts.replace, previous, () => lookupUser(opts.root, mailOwner));

  // mail_owner first: the directories below are given to it
  const userExists = lookupUser(opts.root, mailOwner) !== undefined;
  const simulatedBefore = previous.some((e) => e.kind === "user" && e.name === mailOwner && e.simulated);
  const createUser = !userExists && !(opts.root && simulatedBefore);
  if (createUser) {
    const withGroup = !groupExists(opts.root, mailOwner);
    const command = createUserCommand(mailOwner, queueDirectory, withGroup);
    const shown = command.map((a) => (/^[\w./=-]+$/.test(a) ? a : `'${a}'`)).join(" ");
    const simulated = opts.root !== "";
    const entries: ManifestEntry[] = [];
    if (withGroup) entries.push({ kind: "group", name: mailOwner, part: "queue", ...(simulated ? { simulated } : {}) });
    entries.push({ kind: "user", name: mailOwner, part: "queue", ...(simulated ? { simulated, command: shown } : {}) });
    plan.actions.push({
      says: simulated ? `record the system user ${mailOwner} for the target system (not created under --root): ${shown}` : `create the system user ${mailOwner}: ${shown}`,
      run: () => {
        if (!simulated) runAccountCommand(command);
      },
      entries,
    });
  }

  plan.directory(layout.configDir, 0o755, "config");
  if (newText !== undefined) plan.file(layout.configFile, newText, 0o644, "config");

  plan.directory(queueDirectory, 0o755, "queue", { contents: true });
  plan.queue(queueDirectory, createUser && !opts.root);
  plan.directory(dataDirectory, 0o700, "queue", { ownedByMailOwner: true, contents: true });

  for (const operand of config.list("alias_database")) {
    const { type, name } = fullSpec(operand, config);
    if (!INDEXED_TYPES.has(type) || !isAbsolute(name)) continue;
    plan.directory(dirname(name), 0o755, "config");
    const source = onDisk(layout, name);
    const index = indexPathOf(source);
    const sourceMissing = !existsSync(source);
    if (sourceMissing) plan.file(name, ALIASES_TEXT, 0o644, "config");
    const stale = sourceMissing || !existsSync(index) || statSync(index).mtimeMs < statSync(source).mtimeMs;
    if (!stale) continue;
    plan.actions.push({
      says: `build the alias index ${indexPathOf(name)} (newaliases)`,
      run: async () => {
        if ((await newaliasesCommand(defaultsOnlyConfig(), [`${type}:${source}`])) !== 0) throw new ExitError(EX_CANTCREAT, `newaliases could not build ${indexPathOf(name)}`);
      },
      entries: existsSync(index) ? [] : [{ kind: "file", path: indexPathOf(name), part: "config" }],
    });
  }

  plan.directory(dirname(layout.executable), 0o755, "program");
  plan.executable(layout.executable, process.execPath);
  for (const { path } of layout.links) {
    plan.directory(dirname(path), 0o755, "program");
    plan.link(path, layout.executable);
  }

  plan.directory(dirname(layout.systemdUnit), 0o755, "program");
  plan.file(layout.systemdUnit, systemdUnit({ executable: layout.executable, configDir: layout.configDir, queueDirectory, dataDirectory }), 0o644, "program");
  if (maillogFile && isAbsolute(maillogFile) && !maillogFile.startsWith("/dev/")) {
    plan.directory(layout.logrotateDir, 0o755, "program");
    plan.file(`${layout.logrotateDir}/postern`, logrotateSnippet(maillogFile), 0o644, "program");
  }

  const where = opts.root ? ` under ${opts.root}` : "";
  if (plan.conflicts.length) {
    for (const c of plan.conflicts) log.error(c);
    throw new ExitError(EX_CANTCREAT, `install refused${where}: nothing was changed`);
  }
  if (!plan.actions.length) {
    writeStdout(`postern install: nothing to change${where}: everything is in place\n`);
    return 0;
  }
  if (opts.dryRun) {
    for (const a of plan.actions) writeStdout(`would ${a.says}\n`);
    writeStdout(`postern install: ${plan.actions.length} actions${where}; --dry-run: nothing was changed\n`);
    return 0;
  }

  const made: ManifestEntry[] = [...previous];
  const known = new Set(previous.map(entryKey));
  try {
    for (const action of plan.actions) {
      writeStdout(`${action.says}\n`);
      try {
        await action.run();
      } catch (err) {
        if (err instanceof ExitError) throw err;
        throw new ExitError(EX_CANTCREAT, `cannot ${action.says}: ${(err as Error).message}`);
      }
      for (const e of action.entries) {
        if (!known.has(entryKey(e))) made.push(e);
        known.add(entryKey(e));
      }
    }
  } finally {
    if (existsSync(onDisk(layout, layout.configDir))) writeManifest(onDisk(layout, layout.manifest), { version: 1, entries: made });
  }
  reloadSystemd(layout, plan.actions.some((a) => a.says.includes(layout.systemdUnit)));
  writeStdout(`postern install: done${where}; the install manifest is ${layout.manifest}\n`);
  if (!opts.root) {
    writeStdout(
      `next: set myhostname and mydestination in ${layout.configFile}, run postern check -c ${layout.configDir}, then: systemctl daemon-reload && systemctl enable --now postern\n`,
    );
  }
  return 0;
}

function entryKey(e: ManifestEntry): string {
  return "path" in e ? `${e.kind}:${e.path}` : `${e.kind}:${e.name}`;
}

/** Directories systemd reads units from: a unit written elsewhere (a test prefix) needs no daemon-reload. */
const SYSTEMD_UNIT_DIRS = ["/etc/systemd/system/", "/usr/local/lib/systemd/system/", "/usr/lib/systemd/system/", "/lib/systemd/system/"];

/** After a real install changed the unit, and only where systemd runs and reads that unit. */
function reloadSystemd(layout: Layout, changed: boolean): void {
  if (layout.root || !changed || !existsSync("/run/systemd/system")) return;
  if (!SYSTEMD_UNIT_DIRS.some((d) => layout.systemdUnit.startsWith(d))) return;
  writeStdout("systemctl daemon-reload\n");
  const r = Bun.spawnSync(["systemctl", "daemon-reload"], { stdin: "ignore", stdout: "inherit", stderr: "inherit" });
  if (r.exitCode !== 0) log.warn(`systemctl daemon-reload exited with status ${r.exitCode}: run it by hand`);
}
