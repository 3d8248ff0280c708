/**
 * `postern saslpasswd [-c config_dir] [-b] [-d] USER`: adds or changes
 * (or with -d removes) a user of the SMTP server's built-in SASL backend.
 * The password is read from standard input (its first line), or asked for
 * twice on a terminal without echo; it is stored as an argon2id hash (-b:
 * bcrypt) in the first texthash: table of smtpd_sasl_users_maps
 * (texthash:$config_directory/sasl_users by default), one `USER HASH` line
 * each, written atomically.
 *
 * Run by root (the file becomes root-owned, mode 0640, group of
 * mail_owner, so smtpd can read it and users cannot) or by the owner of an
 * unprivileged installation (mode 0600). Only the table file is trusted.
 */
import { chownSync, closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync } from "node:fs";
import { writeFully } from "../util/durable-file.ts";
import { dirname, join } from "node:path";
import { isatty } from "node:tty";
import { getopt, GetoptError } from "../util/getopt.ts";
import { getpwnam } from "../util/passwd.ts";
import { ExitError, EX_DATAERR, EX_NOINPUT, EX_NOPERM, EX_USAGE } from "../util/sysexits.ts";
import { writeStdout } from "../util/stdio.ts";
import { loadConfig, type Config } from "../global/config/config.ts";
import { splitSpec } from "../global/tables/open-table.ts";

const USAGE = "usage: postern saslpasswd [-c config_dir] [-b] [-d] user";

function usersFile(config: Config): string {
  for (const spec of config.list("smtpd_sasl_users_maps")) {
    const { type, name } = splitSpec(spec);
    if (type === "texthash") return name;
  }
  throw new ExitError(EX_USAGE, `smtpd_sasl_users_maps has no texthash: table to edit ("${config.str("smtpd_sasl_users_maps")}"); edit the table yourself, with hashes from "postern saslpasswd" on a texthash: test table`);
}

async function readPassword(): Promise<string> {
  if (isatty(0)) {
    const ask = async (prompt: string) => {
      writeStdout(prompt);
      Bun.spawnSync(["stty", "-echo"], { stdin: "inherit" });
      try {
        for await (const line of console) return line;
        return "";
      } finally {
        Bun.spawnSync(["stty", "echo"], { stdin: "inherit" });
        writeStdout("\n");
      }
    };
    const a = await ask("Password: ");
    const b = await ask("Again: ");
    if (a !== b) throw new ExitError(EX_DATAERR, "the passwords do not match");
    return a;
  }
  const text = await new Response(Bun.stdin.stream()).text();
  return text.split(/\r?\n/)[0] ?? "";
}

export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = getopt(args, "bc:d");
  } catch (err) {
    if (err instanceof GetoptError) throw new ExitError(EX_USAGE, `${err.message}; ${USAGE}`);
    throw err;
  }
  const opt = (o: string) => parsed.options.find(([x]) => x === o);
  if (parsed.operands.length !== 1) throw new ExitError(EX_USAGE, USAGE);
  const user = parsed.operands[0]!;
  if (!/^[^\s:#]+$/.test(user) || user.length > 255) throw new ExitError(EX_USAGE, `invalid user name "${user}": no blanks, colons or "#"`);
  const config = loadConfig(opt("c")?.[1]);
  const file = usersFile(config);
  const remove = opt("d") !== undefined;

  const lines = existsSync(file) ? readFileSync(file, "utf8").split("\n") : [];
  if (lines.at(-1) === "") lines.pop();
  const key = user.toLowerCase();
  const isUserLine = (l: string) => !/^\s*(#|$)/.test(l) && l.trim().split(/\s+/)[0]!.toLowerCase() === key;
  const kept = lines.filter((l) => !isUserLine(l));
  if (remove) {
    if (kept.length === lines.length) throw new ExitError(EX_NOINPUT, `no user "${user}" in ${file}`);
  } else {
    const password = await readPassword();
    if (password === "") throw new ExitError(EX_DATAERR, "empty password");
    const hash = await Bun.password.hash(password, opt("b") ? { algorithm: "bcrypt", cost: 10 } : { algorithm: "argon2id" });
    kept.push(`${user} ${hash}`);
  }

  const root = process.getuid?.() === 0;
  const tmp = join(dirname(file), `.sasl_users.${process.pid}.tmp`);
  try {
    const fd = openSync(tmp, "wx", root ? 0o640 : 0o600);
    try {
      writeFully(fd, kept.length ? `${kept.join("\n")}\n` : "");
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (root) {
      const owner = getpwnam(config.str("mail_owner"));
      chownSync(tmp, 0, owner?.gid ?? 0);
    }
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {}
    const e = err as NodeJS.ErrnoException;
    throw new ExitError(e.code === "EACCES" || e.code === "EPERM" ? EX_NOPERM : EX_DATAERR, `cannot write "${file}": ${e.message}`);
  }
  return 0;
}
