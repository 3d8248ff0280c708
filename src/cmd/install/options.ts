/**
 * The command line of `postern install` and `postern uninstall`, and the
 * paths it implies (the layout).
 *
 * `--prefix DIR` (default /usr) places the executable in DIR/sbin and the
 * command links in DIR/sbin and DIR/bin. With the default prefix the
 * configuration is /etc/postern and the queue and data directories are
 * under /var, as on any Debian system; with another prefix they are under
 * DIR/etc and DIR/var (autoconf's sysconfdir and localstatedir), so a prefix
 * install is self-contained. `-c DIR` names the configuration directory
 * explicitly. `--root DIR` puts every path under DIR (Postfix's
 * install_root, a packager's DESTDIR); paths recorded and written into files
 * stay the ones the installed system will see.
 *
 * Runs as the invoking user; the arguments are untrusted only in shape:
 * paths must be absolute and free of "..", parameters must be known names.
 */
import { join, normalize } from "node:path";
import { paramDef } from "../../global/config/registry.ts";
import { ExitError, EX_USAGE } from "../../util/sysexits.ts";

export interface InstallOptions {
  prefix: string;
  /** "" for the real root. */
  root: string;
  /** -c: the configuration directory, when given. */
  configDir?: string;
  replace: boolean;
  dryRun: boolean;
  purge: boolean;
  /** name=value operands: parameters for a new postern.toml. */
  params: Map<string, string>;
}

export const INSTALL_USAGE =
  "usage: postern install [-c config_dir] [--prefix DIR] [--root DIR] [--replace] [--dry-run] [name=value ...]";
export const UNINSTALL_USAGE = "usage: postern uninstall [-c config_dir] [--prefix DIR] [--root DIR] [--purge] [--dry-run]";

function absolutePath(option: string, value: string | undefined, usage: string): string {
  if (value === undefined || value === "") throw new ExitError(EX_USAGE, `${option} needs a directory; ${usage}`);
  if (!value.startsWith("/")) throw new ExitError(EX_USAGE, `${option} "${value}": the directory must be an absolute path`);
  if (value.split("/").includes("..")) throw new ExitError(EX_USAGE, `${option} "${value}": the path must not contain ".."`);
  // "/" alone stays "/", anything else loses its trailing slash
  return normalize(value).replace(/(.)\/+$/, "$1");
}

/** Parses the arguments after the command name; `forUninstall` allows --purge and refuses name=value. */
export function parseInstallArgs(args: readonly string[], forUninstall: boolean): InstallOptions {
  const usage = forUninstall ? UNINSTALL_USAGE : INSTALL_USAGE;
  const opts: InstallOptions = { prefix: "/usr", root: "", replace: false, dryRun: false, purge: false, params: new Map() };
  for (let i = 0; i < args.length; i++) {
    const word = args[i]!;
    const eq = word.indexOf("=");
    const [flag, glued] = word.startsWith("--") && eq > 0 ? [word.slice(0, eq), word.slice(eq + 1)] : [word, undefined];
    const value = () => glued ?? args[++i];
    switch (flag) {
      case "--prefix":
        opts.prefix = absolutePath(flag, value(), usage);
        continue;
      case "--root": {
        const root = absolutePath(flag, value(), usage);
        opts.root = root === "/" ? "" : root;
        continue;
      }
      case "-c":
        opts.configDir = absolutePath(flag, value(), usage);
        continue;
      case "--dry-run":
      case "-n":
        opts.dryRun = true;
        continue;
      case "--replace":
        if (forUninstall) break;
        opts.replace = true;
        continue;
      case "--purge":
        if (!forUninstall) break;
        opts.purge = true;
        continue;
    }
    if (word.startsWith("-c") && word.length > 2) {
      opts.configDir = absolutePath("-c", word.slice(2), usage);
      continue;
    }
    if (!forUninstall && !word.startsWith("-") && eq > 0) {
      const name = word.slice(0, eq).trim();
      if (!paramDef(name)) throw new ExitError(EX_USAGE, `unknown parameter "${name}" in "${word}"; ${usage}`);
      if (/[\0-\x1f\x7f]/.test(word)) throw new ExitError(EX_USAGE, `"${name}": the value must not contain control characters`);
      opts.params.set(name, word.slice(eq + 1).trim());
      continue;
    }
    throw new ExitError(EX_USAGE, `unexpected argument "${word}"; ${usage}`);
  }
  return opts;
}

/** Where everything goes, as the installed system sees it (without the --root directory). */
export interface Layout {
  root: string;
  prefix: string;
  executable: string;
  links: ReadonlyArray<{ name: string; path: string }>;
  configDir: string;
  configFile: string;
  manifest: string;
  systemdUnit: string;
  logrotateDir: string;
  /** Parameters a new postern.toml sets because the prefix moves them away from the defaults. */
  prefixParams: ReadonlyMap<string, string>;
}

/** Postfix's places for the command names: mailq and newaliases in bin/, the rest in sbin/. */
const IN_BIN = new Set(["mailq", "newaliases"]);

export function layoutFor(opts: InstallOptions, linkNames: readonly string[]): Layout {
  const system = opts.prefix === "/usr";
  const etc = system ? "/etc" : join(opts.prefix, "etc");
  const state = system ? "/var" : join(opts.prefix, "var");
  const configDir = opts.configDir ?? join(etc, "postern");
  const executable = join(opts.prefix, "sbin", "postern");
  const prefixParams = new Map<string, string>();
  if (!system) {
    prefixParams.set("queue_directory", join(state, "spool", "postern"));
    prefixParams.set("data_directory", join(state, "lib", "postern"));
    prefixParams.set("alias_maps", `hash:${join(etc, "aliases")}`);
    prefixParams.set("alias_database", `hash:${join(etc, "aliases")}`);
  }
  return {
    root: opts.root,
    prefix: opts.prefix,
    executable,
    links: linkNames.map((name) => ({ name, path: join(opts.prefix, IN_BIN.has(name) ? "bin" : "sbin", name) })),
    configDir,
    configFile: join(configDir, "postern.toml"),
    // Postfix keeps its own install list (postfix-files) in the configuration directory too: root's, never mail_owner's
    manifest: join(configDir, "install-manifest.json"),
    // admin-installed units go to /etc; systemd also reads /usr/local/lib/systemd/system, so a /usr/local prefix works
    systemdUnit: system ? "/etc/systemd/system/postern.service" : join(opts.prefix, "lib", "systemd", "system", "postern.service"),
    logrotateDir: join(etc, "logrotate.d"),
    prefixParams,
  };
}

/** The path on this machine: under --root when one is given. */
export function onDisk(layout: { root: string }, path: string): string {
  return layout.root ? join(layout.root, path) : path;
}
