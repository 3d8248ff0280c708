/**
 * The service table: every daemon role of a running system on one screen,
 * as Postfix's master.cf is. For each role: the user it runs as, who starts
 * it, what wakes it up, how many processes it runs, and the channels it
 * serves and uses. The master starts what the table says with the sockets
 * the table names (src/master/main.ts), the privilege drop reads "runs as"
 * (src/daemon/privileges.ts), and tests check the table's consistency
 * (test/unit/global/system/service-table.test.ts) and the running system
 * against it (test/e2e/daemon/service-table.test.ts).
 *
 * In unprivileged mode (a system started by a user other than root) every
 * role runs as that user: the "runs as" column is what a system started by
 * root does.
 *
 * Pure data, read by the master (root) and by every daemon; distrusts nothing.
 */

/** The daemon roles (each is also a `postern ROLE` entry of src/roles.ts). */
export type DaemonRole = "master" | "pickup" | "qmgr" | "showq" | "local" | "local-worker" | "smtpd";

/** The user a role runs as when the system is started by root. */
export type RunsAs =
  /** stays root */
  | "root"
  /** drops to mail_owner (initgroups, setgid, setuid) before it reads anything untrusted */
  | "mail_owner"
  /** becomes the recipient (or default_privs) given by its parent before it reads anything */
  | "recipient";

/** Who starts the role's processes. */
export type StartedBy = "user" | "master" | "local";

/** The named channels between the processes, and between the system and its users. */
export type ChannelName = "private/local" | "public/qmgr" | "public/showq" | "smtpd listeners" | "local-worker pipe";

export interface Channel {
  /** unix: a socket below queue_directory, made by the master; inet: TCP listeners; pipe: a child's stdin and stdout. */
  kind: "unix" | "inet" | "pipe";
  /** unix: the socket's path relative to queue_directory. */
  path?: string;
  /** unix: the socket's mode at creation; its directory is the guard (private/ 0700 mail_owner, public/ 0755 root). */
  mode?: number;
  /** Who may reach it, and what the server checks. */
  guard: string;
  /** Clients outside the daemon roles (commands run by users, the network). */
  outsideClients?: string;
}

export const CHANNELS: Readonly<Record<ChannelName, Channel>> = {
  "private/local": { kind: "unix", path: "private/local", mode: 0o666, guard: "private/ is mail_owner's, 0700: the queue manager only; requests checked field by field" },
  "public/qmgr": { kind: "unix", path: "public/qmgr", mode: 0o666, guard: "every user; a flush only for peers (SO_PEERCRED) authorized_flush_users allows", outsideClients: "postqueue -f/-s/-i, sendmail -q" },
  "public/showq": { kind: "unix", path: "public/showq", mode: 0o666, guard: "every user; a listing only for peers (SO_PEERCRED) authorized_mailq_users allows", outsideClients: "mailq, postqueue -p" },
  "smtpd listeners": { kind: "inet", guard: "the network; each service's listen addresses from the services table", outsideClients: "SMTP clients" },
  "local-worker pipe": { kind: "pipe", guard: "the worker's stdin and stdout: only its parent, the local service" },
};

/** A poll interval plus, optionally, a directory watched for changes (src/daemon/wake-up.ts). */
export interface WakeUp {
  /** Below queue_directory; a change there starts a pass at once. */
  watch?: string;
  pollSeconds: number;
}

export interface DaemonEntry {
  runsAs: RunsAs;
  startedBy: StartedBy;
  /** What starts a pass of its work besides a request on a served channel; undefined: requests only. */
  wakeUp?: WakeUp;
  /**
   * 1: one process, restarted by the master when it exits; "per recipient": one process per
   * recipient identity in use (kept while busy, ended when idle); "per service": for each enabled
   * service of its role, smtpdProcessPlan(process_limit) processes (one).
   */
  processLimit: 1 | "per recipient" | "per service";
  /**
   * Started by the master only when work waits for it, and gone again after `max_idle` without any, as
   * Postfix's master runs its services: "connection": a connection pending on the socket it serves (the
   * master, which holds the socket, polls it while the service is down; smtpd: on one of the TCP sockets
   * the master bound for its service, src/master/smtpd-sockets.ts, unless the service binds its own); "maildrop": an entry in
   * maildrop/ (the master watches the directory, reading names only); "queue": a connection pending on its
   * socket, or a queue file in incoming/, active/ or deferred/ (the queue manager, which leaves only when
   * those are empty). Absent: started with the system and restarted whenever it exits.
   */
  onDemand?: "connection" | "maildrop" | "queue";
  serves: readonly ChannelName[];
  uses: readonly ChannelName[];
  /** Why it runs as that user. */
  why: string;
}

/** Checked against DaemonEntry, and kept literal so that `SERVICE_TABLE.pickup.wakeUp` is known to exist. */
export const SERVICE_TABLE = {
  master: { runsAs: "root", startedBy: "user", processLimit: 1, serves: [], uses: [], why: "creates the sockets and pid/master.pid in root's directories, starts local as root" },
  local: { runsAs: "root", startedBy: "master", processLimit: 1, onDemand: "connection", serves: ["private/local"], uses: ["local-worker pipe"], why: "starts a worker as each recipient (local(8)), as each mapped virtual uid/gid (virtual(8)) and as each pipe service's user= (pipe(8)); virtual and pipe run in the same service" },
  qmgr: { runsAs: "mail_owner", startedBy: "master", onDemand: "queue", wakeUp: { watch: "incoming", pollSeconds: 1 }, processLimit: 1, serves: ["public/qmgr"], uses: ["private/local"], why: "owns incoming/ active/ deferred/; delivers over the network itself" },
  showq: { runsAs: "mail_owner", startedBy: "master", processLimit: 1, onDemand: "connection", serves: ["public/showq"], uses: [], why: "reads the queue for users who may not" },
  pickup: { runsAs: "mail_owner", startedBy: "master", onDemand: "maildrop", wakeUp: { watch: "maildrop", pollSeconds: 60 }, processLimit: 1, serves: [], uses: [], why: "reads maildrop/ (mail_owner's group) and writes incoming/" },
  smtpd: { runsAs: "mail_owner", startedBy: "master", processLimit: "per service", onDemand: "connection", serves: ["smtpd listeners"], uses: ["public/qmgr"], why: "binds its ports and reads its TLS key as root, then faces the network as mail_owner" },
  "local-worker": { runsAs: "recipient", startedBy: "local", processLimit: "per recipient", serves: ["local-worker pipe"], uses: [], why: "writes mailboxes and runs commands with the recipient's (or the pipe service user's) rights only" },
} as const satisfies Readonly<Record<DaemonRole, DaemonEntry>>;

/** A role's entry, as the general shape (for code that goes through every role). */
export function daemonEntry(role: DaemonRole): DaemonEntry {
  return SERVICE_TABLE[role];
}

/** The roles the master runs one process of, in the table's order (the order it starts them). */
export function masterSingletons(): DaemonRole[] {
  return (Object.keys(SERVICE_TABLE) as DaemonRole[]).filter((r) => SERVICE_TABLE[r].startedBy === "master" && SERVICE_TABLE[r].processLimit === 1);
}

/** Whether the master starts the role only on demand (see DaemonEntry.onDemand). */
export function startedOnDemand(role: DaemonRole): boolean {
  return daemonEntry(role).onDemand !== undefined;
}

/** The unix socket a role serves, if any: the one the master makes and passes on as descriptor 3. */
export function servedSocket(role: DaemonRole): (Channel & { name: ChannelName; path: string; mode: number }) | undefined {
  for (const name of SERVICE_TABLE[role].serves) {
    const c = CHANNELS[name];
    if (c.kind === "unix" && c.path !== undefined && c.mode !== undefined) return { ...c, name, path: c.path, mode: c.mode };
  }
  return undefined;
}
