/**
 * mysql: end-to-end messages per second of smtp-source into a virtual
 * mailbox whose domain, mailbox and alias are rows in MariaDB (issue 13's
 * benchmark): virtual_mailbox_domains, virtual_mailbox_maps and
 * virtual_alias_maps are mysql: tables on postern's side and
 * `proxy:mysql:` tables on Postfix's (Debian's postfix-mysql), both reading
 * one MariaDB that the scenario starts in its own directory (UNIX socket
 * only) and stops by its PID at the end. smtp-source sends to an alias
 * (`info@`, which virtual_alias_maps maps to `user@`; `--to mailbox` sends
 * to `user@` directly), so smtpd validates the recipient, cleanup expands
 * it, the queue manager resolves it and the virtual agent finds its Maildir,
 * each through the database. Besides the rates it reports the queries
 * each side sent per message: MariaDB's Com_select counter before and
 * after each run (runs never overlap).
 *
 * `--cache-time N` writes `cache_time = N` into postern's table files
 * (its answer memo, default 1 s; 0 turns it off); Postfix has no such
 * setting. Runs alternate between the systems, as smtp-throughput's do,
 * whose run loop this reuses.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { onCleanup } from "../lib/cleanup.ts";
import type { BenchContext } from "../lib/context.ts";
import { mariaDbSocket, startMariaDb, type BenchMariaDb } from "../lib/mariadb.ts";
import { alternateRuns, mtaPlan, notApplicable, startSystems } from "../lib/alternate.ts";
import type { MtaName } from "../lib/mta.ts";
import { MESSAGES_OPTION, wholeNumber } from "../lib/options.ts";
import type { Measurement, Scenario, ScenarioResult } from "../lib/scenario.ts";
import { oneRun, type RunResult } from "./smtp-throughput.ts";

const DOMAIN = "mysql.bench";
const VMAIL_ID = 5000;
/** Other users and aliases in the tables, so that lookups use the index as in a real domain. */
const FILLER_ROWS = 2000;
const PASSWORD = "bench-pw";

/** Set by parameters(), used by run(). */
const state = { dir: "", bases: { postfix: "", postern: "" } as Record<MtaName, string>, cacheTime: undefined as number | undefined };

/** The three table files of one side. */
function tableFiles(dir: string, side: MtaName, cacheTime: number | undefined): Record<string, string> {
  const queries: Record<string, string> = {
    domains: "SELECT domain FROM domains WHERE domain = '%s'",
    mailboxes: "SELECT maildir FROM mailboxes WHERE email = '%s'",
    aliases: "SELECT goto FROM aliases WHERE address = '%s'",
  };
  const out: Record<string, string> = {};
  for (const [name, query] of Object.entries(queries)) {
    const path = join(dir, `${side}-${name}.cf`);
    const extra = side === "postern" && cacheTime !== undefined ? `cache_time = ${cacheTime}\n` : "";
    // readable by Postfix's proxymap, which opens it after its privilege drop; the password guards nothing else
    writeFileSync(path, `hosts = unix:${mariaDbSocket(join(dir, "db"))}\nuser = mail\npassword = ${PASSWORD}\ndbname = mail\nquery = ${query}\n${extra}`, { mode: 0o644 });
    out[name] = path;
  }
  return out;
}

export const scenario: Scenario = {
  name: "mysql",
  summary: "End-to-end messages/s of smtp-source (4 KiB, 20 sessions) to a virtual alias and mailbox in MariaDB (mysql: / proxy:mysql:)",
  defaultRuns: 3,
  options: {
    messages: MESSAGES_OPTION,
    sessions: { type: "string", description: "parallel SMTP sessions (default 20)" },
    to: { type: "string", description: "alias (default: info@, expanded to user@) or mailbox (user@)" },
    "cache-time": { type: "string", description: "cache_time in postern's table files (default: not set, postern's 1 s)" },
  },
  parameters(options) {
    const cache = options.extra["cache-time"];
    state.cacheTime = cache === undefined ? undefined : wholeNumber(cache, 1, "cache-time", 0);
    const dir = mkdtempSync(join(options.tmpdir, "postern-bench-mysql-"));
    state.dir = dir;
    if (!options.keep) onCleanup(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
    // the delivery agents write as the vmail uid, and the daemons reach the socket, below it
    chmodSync(dir, 0o755);
    const params = (name: MtaName): Record<string, string> => {
      const base = join(dir, name);
      mkdirSync(base, { recursive: true, mode: 0o755 });
      chownSync(base, VMAIL_ID, VMAIL_ID);
      state.bases[name] = base;
      const files = tableFiles(dir, name, state.cacheTime);
      const type = name === "postfix" ? "proxy:mysql:" : "mysql:";
      return {
        virtual_mailbox_domains: `${type}${files.domains}`,
        virtual_mailbox_base: base,
        virtual_mailbox_maps: `${type}${files.mailboxes}`,
        virtual_alias_maps: `${type}${files.aliases}`,
        virtual_uid_maps: `static:${VMAIL_ID}`,
        virtual_gid_maps: `static:${VMAIL_ID}`,
        virtual_minimum_uid: "100",
      };
    };
    return { postfix: params("postfix"), postern: params("postern") };
  },
  run,
};

function loadSchema(db: BenchMariaDb): void {
  // seq_0_to_N: MariaDB's Sequence engine, so the statement stays short
  const seq = `seq_0_to_${FILLER_ROWS - 1}`;
  db.sql(`CREATE DATABASE mail; USE mail;
    CREATE TABLE domains (domain VARCHAR(255) PRIMARY KEY);
    CREATE TABLE mailboxes (email VARCHAR(255) PRIMARY KEY, maildir VARCHAR(255) NOT NULL);
    CREATE TABLE aliases (address VARCHAR(255) NOT NULL, goto VARCHAR(255) NOT NULL, KEY (address));
    INSERT INTO domains VALUES ('${DOMAIN}'), ('other.bench');
    INSERT INTO mailboxes VALUES ('user@${DOMAIN}', '${DOMAIN}/user/');
    INSERT INTO mailboxes SELECT CONCAT('u', seq, '@${DOMAIN}'), CONCAT('${DOMAIN}/u', seq, '/') FROM ${seq};
    INSERT INTO aliases VALUES ('info@${DOMAIN}', 'user@${DOMAIN}');
    INSERT INTO aliases SELECT CONCAT('a', seq, '@${DOMAIN}'), CONCAT('u', seq, '@${DOMAIN}') FROM ${seq};
    CREATE USER 'mail'@'localhost' IDENTIFIED BY '${PASSWORD}';
    GRANT SELECT ON mail.* TO 'mail'@'localhost';`);
  const rows = db.sql("SELECT COUNT(*) FROM mail.mailboxes").trim();
  if (rows !== String(FILLER_ROWS + 1)) throw new Error(`the mailboxes table has ${rows} rows, not ${FILLER_ROWS + 1}`);
}

interface CountedRun extends RunResult {
  selects: number;
  connections: number;
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const messages = wholeNumber(ctx.options.extra.messages, 2000, "messages");
  const sessions = wholeNumber(ctx.options.extra.sessions, 20, "sessions");
  const to = String(ctx.options.extra.to ?? "alias");
  if (to !== "alias" && to !== "mailbox") throw new Error(`--to must be "alias" or "mailbox", not "${to}"`);
  ctx.progress(`starting MariaDB in ${join(state.dir, "db")}`);
  const db = startMariaDb(join(state.dir, "db"));
  loadSchema(db);

  const { started, active } = startSystems(ctx);
  const recipient = `${to === "alias" ? "info" : "user"}@${DOMAIN}`;
  const target = (name: MtaName) => ({ recipient, maildir: join(state.bases[name], DOMAIN, "user") });
  const counted = async (mta: (typeof active)[number], n: number): Promise<CountedRun> => {
    const before = db.status(["Com_select", "Connections"]);
    const r = await oneRun(ctx, mta, n, sessions, target(mta.name));
    const after = db.status(["Com_select", "Connections"]);
    // the harness's own status read after the run is one connection
    return { ...r, selects: after.Com_select! - before.Com_select!, connections: after.Connections! - before.Connections! - 1 };
  };

  const warmup = Math.min(messages, 200);
  for (const mta of active) {
    ctx.progress(`warm-up: ${warmup} messages through ${mta.name}`);
    const r = await counted(mta, warmup);
    if (r.error) throw new Error(`${mta.name}: warm-up failed: ${r.error}`);
  }
  const results = await alternateRuns(mtaPlan([sessions], ctx.options.runs, active), async (mta, _, i) => {
    const r = await counted(mta, messages);
    ctx.progress(
      `  ${mta.name}, run ${i + 1}/${ctx.options.runs}: ${r.delivered} delivered, ${r.rate.toFixed(1)}/s end to end, ${(r.selects / Math.max(1, r.delivered)).toFixed(2)} queries/message, ${r.connections} new connections${r.error ? `; FAILED: ${r.error}` : ""}`,
    );
    return r;
  });
  const report = results.report((r) => r.error, (name) => notApplicable(started[name]));
  const side = (name: MtaName, pick: (r: CountedRun) => number) => report.side(name, sessions, pick);
  const failures = report.failures(sessions);
  const measurements: Measurement[] = [
    { name: `${sessions} sessions to ${recipient} (tables in MariaDB), end to end`, unit: "msg/s", better: "higher", postfix: side("postfix", (r) => r.rate), postern: side("postern", (r) => r.rate), target: { ratio: 2, kind: "at least" }, notes: failures },
    { name: "over SMTP (until smtp-source exits)", unit: "msg/s", better: "higher", postfix: side("postfix", (r) => r.smtpRate), postern: side("postern", (r) => r.smtpRate) },
    { name: "SELECT queries per message (MariaDB Com_select)", unit: "queries", better: "lower", postfix: side("postfix", (r) => r.selects / Math.max(1, r.delivered)), postern: side("postern", (r) => r.selects / Math.max(1, r.delivered)) },
    { name: "new database connections per run", unit: "connections", better: "lower", postfix: side("postfix", (r) => r.connections), postern: side("postern", (r) => r.connections) },
    { name: "peak memory, PSS of the whole system", unit: "MB", better: "lower", postfix: side("postfix", (r) => r.pssPeakKb / 1024), postern: side("postern", (r) => r.pssPeakKb / 1024) },
  ];
  for (const mta of active) mta.stop();
  return {
    command: `smtp-source -d -s ${sessions} -m ${messages} -l 4096 -t ${recipient} 127.0.0.1:PORT`,
    measurements,
    notes: [
      `virtual_mailbox_domains, virtual_mailbox_maps, virtual_alias_maps: mysql: (postern${state.cacheTime === undefined ? ", cache_time not set: 1 s" : `, cache_time = ${state.cacheTime}`}) and proxy:mysql: (Postfix) on one MariaDB over its UNIX socket; ${FILLER_ROWS} more users and aliases in the tables`,
      `static uid/gid ${VMAIL_ID}; ${warmup} uncounted warm-up messages per side`,
    ],
  };
}
