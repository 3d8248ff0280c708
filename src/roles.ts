/**
 * The one manifest of what the executable can be: each name maps to a lazy
 * import of its main, so a command loads only its own code (the sendmail
 * and postconf paths never load mailauth or TLS).
 */

/** A role's entry point: arguments after the command name; resolves to the exit status. */
export type RoleMain = (args: string[], invokedAs: string) => Promise<number>;

export interface RoleEntry {
  summary: string;
  load: () => Promise<{ main: RoleMain }>;
  /** Reached by the name the binary is invoked as (a symlink in dist/). */
  symlink?: boolean;
  /** Internal roles the master starts; left out of `postern help`. */
  internal?: boolean;
}

const control = () => import("./cmd/control/main.ts");

export const ROLES: Record<string, RoleEntry> = {
  sendmail: { summary: "Sendmail-compatible mail submission", load: () => import("./cmd/sendmail/main.ts"), symlink: true },
  mailq: { summary: "List the mail queue (sendmail -bp)", load: () => import("./cmd/postqueue/main.ts"), symlink: true },
  newaliases: { summary: "Rebuild the alias databases (sendmail -bi)", load: () => import("./cmd/postalias/newaliases.ts"), symlink: true },
  postqueue: { summary: "Queue control for users: list, flush", load: () => import("./cmd/postqueue/main.ts"), symlink: true },
  postsuper: { summary: "Queue maintenance for the super-user: delete, hold, requeue", load: () => import("./cmd/postsuper/main.ts"), symlink: true },
  postcat: { summary: "Show the contents of queue files", load: () => import("./cmd/postcat/main.ts"), symlink: true },
  postconf: { summary: "Show and edit the configuration", load: () => import("./cmd/postconf/main.ts"), symlink: true },
  postmap: { summary: "Build and query lookup tables", load: () => import("./cmd/postmap/main.ts"), symlink: true },
  postalias: { summary: "Build and query alias databases", load: () => import("./cmd/postalias/main.ts"), symlink: true },
  postlog: { summary: "Write a line to the mail log", load: () => import("./cmd/postlog.ts"), symlink: true },
  postfix: { summary: "Control the mail system: start, stop, reload, check, ...", load: control, symlink: true },
  start: { summary: "Start the mail system in the background", load: control },
  "start-fg": { summary: "Run the mail system in the foreground", load: control },
  master: { summary: "The master daemon (started by start)", load: () => import("./master/main.ts"), internal: true },
  qmgr: { summary: "The queue manager daemon", load: () => import("./qmgr/main.ts"), internal: true },
  showq: { summary: "The queue listing service for mailq (public/showq)", load: () => import("./showq/main.ts"), internal: true },
  pickup: { summary: "Takes sendmail's files from maildrop/ into the queue (--once: one pass)", load: () => import("./pickup/main.ts"), internal: true },
  smtpd: { summary: "The SMTP server of one service (--service NAME)", load: () => import("./smtpd/main.ts"), internal: true },
  local: { summary: "The local delivery service", load: () => import("./local/service.ts"), internal: true },
  "local-worker": { summary: "Local delivery as one user (started by local)", load: () => import("./local/worker/main.ts"), internal: true },
  import: { summary: "Convert Postfix's main.cf and master.cf into postern.toml", load: () => import("./cmd/import/main.ts") },
  saslpasswd: { summary: "Add, change or remove a user of the SMTP server's built-in AUTH", load: () => import("./cmd/saslpasswd.ts") },
  dkim: { summary: "DKIM helpers: new-key makes a signing key and prints its DNS record", load: () => import("./cmd/dkim.ts") },
  tls: { summary: "TLS helpers: new-server-cert makes a self-signed key and certificate", load: () => import("./cmd/tls.ts") },
  stop: { summary: "Stop the mail system gracefully", load: control },
  abort: { summary: "Stop the mail system at once", load: control },
  reload: { summary: "Re-read the configuration of the running system", load: control },
  status: { summary: "Exit 0 when the mail system runs, 1 when not", load: control },
  flush: { summary: "Deliver deferred mail now", load: control },
  check: { summary: "Validate the configuration and the queue directories", load: control },
  "set-permissions": { summary: "Repair owners and modes of the queue", load: control },
  // install links the command names below, which only this file knows: they are passed in
  install: {
    summary: "Set up a server: mail_owner, configuration, queue, command links, systemd unit",
    load: async () => ({ main: (await import("./cmd/install/main.ts")).installMain(symlinkNames()) }),
  },
  uninstall: {
    summary: "Remove what install made (--purge: the configuration and queue too)",
    load: async () => ({ main: (await import("./cmd/install/uninstall.ts")).uninstallMain(symlinkNames()) }),
  },
};

/** Names the build links to the executable (a function: computed when asked, not at every start). */
export function symlinkNames(): string[] {
  return Object.keys(ROLES).filter((n) => ROLES[n]!.symlink);
}
