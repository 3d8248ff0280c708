/**
 * `postern dkim new-key [-c config_dir] [--ed25519] DOMAIN [SELECTOR]`: a
 * new DKIM private key for DOMAIN and SELECTOR (default "default"), RSA
 * 2048 bits or Ed25519 (RFC 8463), written to
 * $dkim_key_directory/DOMAIN.SELECTOR.key (by default
 * $config_directory/dkim), mode 0600, owned by whoever runs the command
 * (root on a server), then prints the DNS TXT record to publish and the
 * parameter line that signs with it. The key directory is made mode 0700
 * when missing. An existing key (or any file or link of that name) is never
 * overwritten: the command refuses, exit 73, and the key in use stays.
 *
 * The running daemons read keys at start: a new key is used after
 * `postern stop` and `postern start`.
 *
 * Run by root or the owner of an unprivileged installation; trusts its
 * configuration; the key directory must not be writable by others (a key
 * written where another user can replace it would be theirs). Exit codes:
 * 64 usage, 73 cannot create, 77 the directory is unsafe, 78 configuration.
 */
import { generateKeyPairSync } from "node:crypto";
import { lstatSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { getopt, GetoptError } from "../util/getopt.ts";
import { ExitError, EX_CANTCREAT, EX_NOPERM, EX_USAGE } from "../util/sysexits.ts";
import { writeStdout } from "../util/stdio.ts";
import { loadConfig } from "../global/config/config.ts";
import { dkimRecordText, dkimZoneLine, isDkimName, keyFileName } from "../global/dkim/keys.ts";
import { createFile } from "./tls.ts";

const USAGE = "usage: postern dkim new-key [-c config_dir] [--ed25519] domain [selector]";
const DEFAULT_SELECTOR = "default";

/** The key directory, made (0700) when missing; refused when someone else could write into it. */
function keyDirectory(dir: string): void {
  let st;
  try {
    st = lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new ExitError(EX_CANTCREAT, `cannot use "${dir}": ${(err as Error).message}`);
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (e) {
      throw new ExitError(EX_CANTCREAT, `cannot create the key directory "${dir}": ${(e as Error).message}`);
    }
    st = lstatSync(dir);
  }
  const me = process.geteuid?.() ?? 0;
  if (!st.isDirectory() || (st.uid !== 0 && st.uid !== me) || (st.mode & 0o022) !== 0) {
    throw new ExitError(EX_NOPERM, `the key directory "${dir}" must be a directory owned by root and writable only by it (mode ${(st.mode & 0o7777).toString(8)}, uid ${st.uid})`);
  }
}

export async function main(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== "new-key") throw new ExitError(EX_USAGE, sub === undefined ? USAGE : `unknown dkim command "${sub}"; ${USAGE}`);
  const ed25519 = rest.includes("--ed25519");
  let parsed;
  try {
    parsed = getopt(
      rest.filter((a) => a !== "--ed25519"),
      "c:",
    );
  } catch (err) {
    if (err instanceof GetoptError) throw new ExitError(EX_USAGE, `${err.message}; ${USAGE}`);
    throw err;
  }
  const [domainArg, selectorArg, ...extra] = parsed.operands;
  if (domainArg === undefined || extra.length > 0) throw new ExitError(EX_USAGE, USAGE);
  const domain = domainArg.toLowerCase().replace(/\.$/, "");
  const selector = (selectorArg ?? DEFAULT_SELECTOR).toLowerCase();
  if (!isDkimName(domain) || !domain.includes(".")) throw new ExitError(EX_USAGE, `invalid domain "${domainArg}"`);
  if (!isDkimName(selector)) throw new ExitError(EX_USAGE, `invalid selector "${selectorArg}": letters, digits, "-" and "_" in dot-separated labels`);
  const config = loadConfig(parsed.options.find(([o]) => o === "c")?.[1]);

  const dir = config.str("dkim_key_directory");
  keyDirectory(dir);
  const path = join(dir, keyFileName(domain, selector));
  try {
    lstatSync(path);
    throw new ExitError(EX_CANTCREAT, `"${path}" exists already: a key in use is never replaced; choose another selector (postern dkim new-key ${domain} SELECTOR)`);
  } catch (err) {
    if (err instanceof ExitError) throw err;
  }
  const { privateKey } = ed25519 ? generateKeyPairSync("ed25519") : generateKeyPairSync("rsa", { modulusLength: 2048 });
  createFile(path, 0o600, privateKey.export({ format: "pem", type: "pkcs8" }).toString());
  const record = dkimRecordText(privateKey);
  writeStdout(
    `${path}: new ${ed25519 ? "Ed25519" : "RSA 2048-bit"} key for d=${domain} s=${selector}\n` +
      `Publish this TXT record in the DNS (zone file form; the strings join into one value):\n\n` +
      `${dkimZoneLine(domain, selector, record)}\n\n` +
      `or, in a DNS provider's form: name ${selector}._domainkey.${domain}, type TXT, value:\n${record}\n\n` +
      `Sign mail from ${domain} and its subdomains with it (postern.toml), then restart (postern stop; postern start):\n` +
      `dkim_sign_maps = "inline:{ ${domain}=${selector}, .${domain}=${selector} }"\n`,
  );
  return 0;
}
