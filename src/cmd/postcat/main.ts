/**
 * postcat(1): show queue files in human-readable form.
 *
 *     postcat [-behoqrv] [-c config_dir] [files...]
 *
 * By default the envelope, the header and the body (-beh); -e, -h and -b
 * pick sections, and the section markers appear only with the envelope, as
 * with Postfix. -q finds each named queue ID in the queues; otherwise the
 * arguments are file paths, and without any the file is read from standard
 * input. -o prefixes each line with its byte offset; -r (file order) is what
 * postern always does, -v is accepted. Postfix's -d and -s describe
 * Postfix's record layout and are not supported.
 *
 * Only root and the owner of the queue (mail_owner, or the user of an
 * unprivileged instance) may run it: queue files hold other users' mail.
 * Queue IDs are checked before they become paths; queue files are opened
 * without following symbolic links; a file that does not decode is an error
 * (EX_DATAERR), and nothing of it is printed.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { getopt, GetoptError } from "../../util/getopt.ts";
import { OutputWriter } from "../../util/output.ts";
import { ExitError, EX_DATAERR, EX_NOINPUT, EX_NOPERM, EX_USAGE } from "../../util/sysexits.ts";
import { loadConfig } from "../../global/config/config.ts";
import { setupLog } from "../../global/system/log-setup.ts";
import { queueAccess } from "../../global/queue/access.ts";
import { CorruptQueueFileError } from "../../global/queue/format.ts";
import { isQueueId, MESSAGE_QUEUES } from "../../global/queue/names.ts";
import { readQueueFileNoFollow } from "../../global/queue/safe-read.ts";
import { renderQueueFile, type RenderOptions } from "./render.ts";

const USAGE = "usage: postcat [-behoqrv] [-c config_dir] [files...]";

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === "ENOENT") return "no such file or directory";
  if (e.code === "EACCES") return "permission denied";
  return e.message;
}

/** Finds a queue ID in the message queues (mailq's order). */
function readFromQueue(queueDirectory: string, id: string): { name: string; bytes: Buffer } {
  if (isQueueId(id)) {
    for (const queue of MESSAGE_QUEUES) {
      let bytes: Buffer | undefined;
      try {
        bytes = readQueueFileNoFollow(join(queueDirectory, queue, id));
      } catch (err) {
        throw new ExitError(EX_NOINPUT, `Cannot open queue file "${queue}/${id}": ${describe(err)}`);
      }
      if (bytes) return { name: `${queue}/${id}`, bytes };
    }
  }
  throw new ExitError(EX_NOINPUT, `Cannot open queue file "${id}": no such file in any queue`);
}

export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = getopt(args, "bc:dehnoqrs:v");
  } catch (err) {
    if (err instanceof GetoptError) throw new ExitError(EX_USAGE, `${err.message}; ${USAGE}`);
    throw err;
  }
  const opts: RenderOptions = { envelope: false, header: false, body: false, offsets: false };
  let configDir: string | undefined;
  let searchQueue = false;
  for (const [opt, arg] of parsed.options) {
    switch (opt) {
      case "b": opts.body = true; break;
      case "c": configDir = arg; break;
      case "e": opts.envelope = true; break;
      case "h": opts.header = true; break;
      case "o": opts.offsets = true; break;
      case "q": searchQueue = true; break;
      case "r": case "v": break;
      default:
        throw new ExitError(EX_USAGE, `option -${opt} describes Postfix's record layout and is not supported; ${USAGE}`);
    }
  }
  if (!opts.envelope && !opts.header && !opts.body) opts.envelope = opts.header = opts.body = true;
  if (searchQueue && parsed.operands.length === 0) throw new ExitError(EX_USAGE, `-q needs one or more queue IDs; ${USAGE}`);

  const config = loadConfig(configDir);
  await setupLog(config, { role: "postcat", stderrProgram: "postcat" });
  const access = queueAccess(config);
  if (!access.isAdministrator) {
    throw new ExitError(EX_NOPERM, `Only root and the owner of the queue${access.ownerName ? ` ("${access.ownerName}")` : ""} may read queue files`);
  }

  const out = new OutputWriter();
  const sources: Array<() => { name: string; bytes: Buffer }> =
    parsed.operands.length === 0
      ? [() => ({ name: "stdin", bytes: readFileSync(0) })]
      : parsed.operands.map((arg) =>
          searchQueue
            ? () => readFromQueue(access.queueDirectory, arg)
            : () => {
                try {
                  return { name: arg, bytes: readFileSync(arg) };
                } catch (err) {
                  throw new ExitError(EX_NOINPUT, `Cannot open "${arg}": ${describe(err)}`);
                }
              },
        );
  for (const source of sources) {
    const { name, bytes } = source();
    let rendered: Buffer;
    try {
      rendered = renderQueueFile(bytes, name, opts);
    } catch (err) {
      if (err instanceof CorruptQueueFileError) {
        out.flush();
        throw new ExitError(EX_DATAERR, `"${name}" is not a valid queue file: ${err.message}`);
      }
      throw err;
    }
    out.write(rendered);
    if (!out.open) break;
  }
  out.flush();
  return 0;
}
