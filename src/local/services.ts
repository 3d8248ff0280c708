/**
 * What the delivery graph needs from outside: the settings, the user
 * database, the alias tables, whether a domain is ours, and a performer that
 * runs jobs with a user's rights (performer.ts). Privilege decisions that
 * Postfix makes with set_eugid() are made here: which identity a job gets.
 *
 * Runs in the local delivery agent.
 */
import { getpwnam, getpwuid, type PasswdEntry } from "../util/passwd.ts";
import type { Table, TableOwner } from "../global/tables/table.ts";
import type { Identity, WorkerJob, JobResult } from "./worker/jobs.ts";
import type { Performer } from "./worker/performer.ts";
import type { LocalSettings } from "./settings.ts";
import type { UserAttr } from "./state.ts";
import { log } from "../util/log.ts";

export type TableOpener = (spec: string) => Table | Promise<Table>;

export interface LocalServicesOptions {
  settings: LocalSettings;
  performer: Performer;
  /** Root: jobs run as the recipient through workers. Unprivileged: everything runs as the invoking user. */
  privileged: boolean;
  openTable: TableOpener;
  passwdFile?: string;
  groupFile?: string;
  isLocalDomain?: (domain: string) => Promise<boolean>;
}

export class LocalServices {
  readonly settings: LocalSettings;
  readonly performer: Performer;
  readonly privileged: boolean;
  readonly #openTable: TableOpener;
  readonly #passwdFile: string | undefined;
  readonly #isLocalDomain: ((domain: string) => Promise<boolean>) | undefined;
  readonly #tables = new Map<string, Promise<Table>>();

  constructor(opts: LocalServicesOptions) {
    this.settings = opts.settings;
    this.performer = opts.performer;
    this.privileged = opts.privileged;
    this.#openTable = opts.openTable;
    this.#passwdFile = opts.passwdFile;
    this.#isLocalDomain = opts.isLocalDomain;
  }

  getpwnam(name: string): PasswdEntry | undefined {
    return this.#thisStep(`name ${name}`, () => getpwnam(name, this.#passwdFile));
  }

  getpwuid(uid: number): PasswdEntry | undefined {
    return this.#thisStep(`uid ${uid}`, () => getpwuid(uid, this.#passwdFile));
  }

  /**
   * Answers of this synchronous step: one step of a delivery asks for the
   * same user several times (the .forward search, the identity of its job,
   * the mailbox planned ahead), and each lookup is a stat(2) of the passwd
   * file (util/passwd.ts). They are forgotten at the next microtask
   * checkpoint, so the next step, after any await, asks the file again.
   */
  readonly #step = new Map<string, PasswdEntry | undefined>();
  #thisStep(key: string, lookup: () => PasswdEntry | undefined): PasswdEntry | undefined {
    if (this.#step.has(key)) return this.#step.get(key);
    if (this.#step.size === 0) queueMicrotask(() => this.#step.clear());
    const entry = lookup();
    this.#step.set(key, entry);
    return entry;
  }

  /** A table opened once and kept (a failed open is tried again next time). */
  table(spec: string): Promise<Table> {
    let t = this.#tables.get(spec);
    if (!t) {
      t = Promise.resolve().then(() => this.#openTable(spec));
      t.catch(() => this.#tables.delete(spec));
      this.#tables.set(spec, t);
    }
    return t;
  }

  /** Postfix's maps_find: the first table that has `key`; throws TableError when a table cannot answer. */
  async mapsFind(specs: string[], key: string): Promise<{ value: string; table: Table } | undefined> {
    for (const spec of specs) {
      const table = await this.table(spec);
      const value = await table.lookup(key);
      if (value !== undefined) return { value, table };
    }
    return undefined;
  }

  /**
   * Whose the table is, for alias rights. In unprivileged mode every table
   * counts as the mail system's own (everything runs as the invoking user).
   */
  tableOwner(table: Table): TableOwner {
    if (!this.privileged) return { status: "trusted", uid: 0 };
    return table.owner();
  }

  /** Is the domain delivered here (mydestination, with its tables and files)? Throws TableError when that cannot be told. */
  async isLocalDomain(domain: string): Promise<boolean> {
    if (domain === "") return true;
    if (this.#isLocalDomain) return this.#isLocalDomain(domain);
    return this.settings.mydestination.has(domain.toLowerCase());
  }

  userAttr(pw: PasswdEntry): UserAttr {
    return { uid: pw.uid, gid: pw.gid, home: pw.home, logname: pw.name, shell: pw.shell };
  }

  /** The rights for files and commands: uid/gid 0 become default_privs, as Postfix's deliver_file/deliver_command do. */
  externalRights(usr: UserAttr): { usr: UserAttr } | { error: string } {
    if (!this.privileged) return { usr };
    if (usr.uid !== 0 && usr.gid !== 0) return { usr };
    const pw = this.getpwnam(this.settings.defaultPrivs);
    if (!pw) return { error: `default_privs: unknown user "${this.settings.defaultPrivs}"` };
    if (pw.uid === 0 || pw.gid === 0) return { error: `default_privs: "${this.settings.defaultPrivs}" is a privileged user` };
    return {
      usr: {
        ...usr,
        uid: usr.uid === 0 ? pw.uid : usr.uid,
        gid: usr.gid === 0 ? pw.gid : usr.gid,
        logname: usr.uid === 0 ? (usr.logname ?? pw.name) : usr.logname,
      },
    };
  }

  /** The identity a job for `usr` runs as; undefined means the agent's own rights. */
  identity(usr: UserAttr, gid = usr.gid): Identity | undefined {
    if (!this.privileged || usr.uid === 0) return undefined;
    const name = usr.logname && this.getpwnam(usr.logname)?.uid === usr.uid ? usr.logname : this.getpwuid(usr.uid)?.name;
    return { uid: usr.uid, gid, ...(name ? { user: name } : {}) };
  }

  /** Runs a job and logs the warnings it brings back. */
  async run(identity: Identity | undefined, job: WorkerJob, payload?: Uint8Array): Promise<JobResult> {
    const r = await this.performer.run(identity, job, payload);
    for (const w of r.warnings ?? []) log.warn(w);
    return r;
  }

  /**
   * Stops the workers. The tables are the process-wide cache's: they close when the configuration
   * they were opened for is released (src/global/config/generation.ts), not here.
   */
  async close(): Promise<void> {
    this.#tables.clear();
    await this.performer.close();
  }
}
