/**
 * postsuper(1): queue maintenance for the super-user.
 *
 *     postsuper [-psSv] [-c config_dir] [-d queue_id] [-e queue_id] [-f queue_id]
 *               [-h queue_id] [-H queue_id] [-r queue_id] [queue ...]
 *
 * Each of -d -e -f -h -H -r takes a queue ID, `ALL` (upper case, as a safety
 * measure) or `-` (IDs from standard input, one a line), and may be given
 * many times. Queue names after the options replace each action's default
 * queues. Without any option, postsuper does -s -p, as Postfix's does.
 * Housekeeping (-p, -s) comes first, then requeue, delete, expire, hold and
 * release, each reported with Postfix's counts on stderr and in the log.
 *
 * Only root and the owner of the queue directories (mail_owner, or the user
 * of an unprivileged instance) may run it; root drops to the queue's owner
 * before it touches the queue, as Postfix's postsuper drops to mail_owner,
 * so nothing a daemon account planted there is ever acted on as root.
 * Fatal errors exit with sysexits codes (Postfix 3.7 exits 1).
 */
import { getopt, GetoptError } from "../../util/getopt.ts";
import { writeStderr } from "../../util/stdio.ts";
import { log } from "../../util/log.ts";
import { getpwuid } from "../../util/passwd.ts";
import { ExitError, EX_NOPERM, EX_OSERR, EX_UNAVAILABLE, EX_USAGE } from "../../util/sysexits.ts";
import { loadConfig } from "../../global/config/config.ts";
import { setupLog } from "../../global/system/log-setup.ts";
import { queueAccess, queueReadability, type QueueAccess } from "../../global/queue/access.ts";
import { MESSAGE_QUEUES, type MessageQueue } from "../../global/queue/names.ts";
import { applyToAll, applyToIds, DEFAULT_QUEUES, DELETE_ALL_QUEUES, reportCounts, type Action, type Counts } from "./operations.ts";
import { ALL_MAINTAINED, checkStructure, purgeTemporaryFiles, type MaintainedQueue } from "./maintenance.ts";

const USAGE =
  "usage: postsuper [-psSv] [-c config_dir] [-d queue_id] [-e queue_id] [-f queue_id] [-h queue_id] [-H queue_id] [-r queue_id] [queue ...]";

const ACTION_OF: Record<string, Action> = { d: "delete", e: "expire", f: "expire-release", h: "hold", H: "release", r: "requeue" };
/** The order Postfix works and reports in. */
const ACTION_ORDER: Action[] = ["requeue", "delete", "expire", "expire-release", "hold", "release"];

interface Request {
  configDir?: string;
  purge: boolean;
  structure: boolean;
  verbose: boolean;
  /** Per action: the IDs named, "ALL", or "-". */
  targets: Map<Action, string[]>;
  queues: MaintainedQueue[];
}

function parseRequest(args: string[]): Request {
  let parsed;
  try {
    parsed = getopt(args, "c:d:e:f:h:H:pr:sSv");
  } catch (err) {
    if (err instanceof GetoptError) {
      writeStderr(`postsuper: ${err.message}\n`);
      throw new ExitError(EX_USAGE, USAGE);
    }
    throw err;
  }
  const req: Request = { purge: false, structure: false, verbose: false, targets: new Map(), queues: [] };
  for (const [opt, arg] of parsed.options) {
    if (opt === "c") req.configDir = arg;
    else if (opt === "p") req.purge = true;
    else if (opt === "s" || opt === "S") req.structure = true;
    else if (opt === "v") req.verbose = true;
    else {
      const action = ACTION_OF[opt]!;
      req.targets.set(action, [...(req.targets.get(action) ?? []), arg!]);
    }
  }
  for (const name of parsed.operands) {
    if (!(ALL_MAINTAINED as string[]).includes(name)) throw new ExitError(EX_USAGE, `Invalid directory name "${name}"; use ${ALL_MAINTAINED.join(", ")}`);
    if (!req.queues.includes(name as MaintainedQueue)) req.queues.push(name as MaintainedQueue);
  }
  if (!req.purge && !req.structure && req.targets.size === 0) {
    req.purge = true;
    req.structure = true;
  }
  return req;
}

/** Root works as the queue's owner; the owner of an unprivileged queue is already that user. */
function dropToQueueOwner(access: QueueAccess): void {
  if (access.uid !== 0 || access.ownerUid === undefined || access.ownerUid === 0) return;
  const pw = getpwuid(access.ownerUid);
  const gid = pw?.gid ?? access.ownerGid ?? access.ownerUid;
  try {
    if (pw) (process as unknown as { initgroups(user: string, gid: number): void }).initgroups(pw.name, gid);
    else process.setgroups?.([gid]);
    process.setgid!(gid);
    process.setuid!(access.ownerUid);
  } catch (err) {
    throw new ExitError(EX_OSERR, `Cannot drop privileges to the queue's owner "${access.ownerName}": ${(err as Error).message}`);
  }
}

function nameOfCurrentUser(): string {
  const uid = process.getuid?.() ?? 0;
  return getpwuid(uid)?.name ?? `uid ${uid}`;
}

async function readIdsFromStdin(): Promise<string[]> {
  const text = await new Response(Bun.stdin.stream()).text();
  return text.split("\n").map((l) => l.replace(/\r$/, "").trim()).filter((l) => l !== "");
}

export async function main(args: string[]): Promise<number> {
  const req = parseRequest(args);
  const config = loadConfig(req.configDir);
  await setupLog(config, { role: "postsuper", stderrProgram: "postsuper" });
  const access = queueAccess(config);
  if (!access.isAdministrator) {
    throw new ExitError(EX_NOPERM, `Use of this command is reserved for the superuser and the owner of the queue${access.ownerName ? ` ("${access.ownerName}")` : ""}`);
  }
  const stdinIds = [...req.targets.values()].some((t) => t.includes("-")) ? await readIdsFromStdin() : [];
  dropToQueueOwner(access);
  if (queueReadability(access.queueDirectory) !== "readable") {
    throw new ExitError(EX_UNAVAILABLE, `Cannot work on the queue in "${access.queueDirectory}" as "${nameOfCurrentUser()}": its directories are missing or not accessible ("postfix check" repairs them)`);
  }

  const queueDirectory = access.queueDirectory;
  const named = req.queues.length > 0;
  if (req.purge) purgeTemporaryFiles(queueDirectory, named ? req.queues : ALL_MAINTAINED, req.verbose);
  if (req.structure) {
    const { renamed } = checkStructure(queueDirectory, named ? req.queues : ALL_MAINTAINED, req.verbose);
    if (renamed > 0) {
      log.info(`Renamed to match inode number: ${renamed} message${renamed === 1 ? "" : "s"}`);
      log.warn("QUEUE FILE NAMES WERE CHANGED TO MATCH INODE NUMBERS");
    }
  }

  const counts: Counts = { requeued: 0, deleted: 0, expired: 0, held: 0, released: 0 };
  const ctx = { queueDirectory, verbose: req.verbose, counts };
  const namedMessageQueues = req.queues.filter((q): q is MessageQueue => (MESSAGE_QUEUES as readonly string[]).includes(q));
  const asked = new Set<Action>();
  for (const action of ACTION_ORDER) {
    const targets = req.targets.get(action);
    if (!targets) continue;
    asked.add(action);
    const ids = targets.flatMap((t) => (t === "-" ? stdinIds : t === "ALL" ? [] : [t]));
    const queues = named ? namedMessageQueues : DEFAULT_QUEUES[action];
    applyToIds(ctx, action, queues, ids);
    if (targets.includes("ALL")) applyToAll(ctx, action, named ? namedMessageQueues : action === "delete" ? DELETE_ALL_QUEUES : DEFAULT_QUEUES[action]);
  }
  reportCounts(counts, asked);
  return 0;
}
