/**
 * DKIM private keys: the key directory ($dkim_key_directory, by default
 * $config_directory/dkim) holds one PEM file per signing domain and
 * selector, named DOMAIN.SELECTOR.key, as `postern dkim new-key` writes
 * them. A daemon that signs (pickup, smtpd) reads every key there once, as
 * root, before it drops to mail_owner (as smtpd reads its TLS key), and
 * keeps them in memory: mail_owner never has to be able to read a key.
 * New keys take a restart (`postern stop`, `postern start`), not a reload.
 *
 * What is read is bounded and checked, since root reads it: the directory
 * and each file must belong to root (or, in unprivileged mode, to the
 * invoking user) and must not be writable by group or others; a key file
 * must be a regular file with one link, opened without following a
 * symbolic link, readable by its owner only (0600 or 0400), at most 64 KiB;
 * at most 1000 keys. A file that fails a check is skipped with a warning,
 * never read.
 *
 * Also the public half as the DNS TXT record to publish (RFC 6376 3.6.1,
 * RFC 8463 for Ed25519).
 */
import { closeSync, fstatSync, lstatSync, openSync, readdirSync, readSync, constants as fsc } from "node:fs";
import { join } from "node:path";
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";

const MAX_KEY_BYTES = 64 * 1024;
const MAX_KEYS = 1000;

/** The file name of a key: DOMAIN.SELECTOR.key (both lower case). */
export function keyFileName(domain: string, selector: string): string {
  return `${domain.toLowerCase()}.${selector.toLowerCase()}.key`;
}

/** Whether `name` may be a signing domain or selector: DNS labels of letters, digits, "-" and "_". */
export function isDkimName(name: string): boolean {
  return name.length <= 253 && name.split(".").every((l) => /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(l));
}

/** Private keys by file name (keyFileName). */
export class DkimKeyring {
  readonly #keys = new Map<string, KeyObject>();
  constructor(readonly directory: string) {}

  get size(): number {
    return this.#keys.size;
  }

  set(fileName: string, key: KeyObject): void {
    this.#keys.set(fileName, key);
  }

  get(domain: string, selector: string): KeyObject | undefined {
    return this.#keys.get(keyFileName(domain, selector));
  }
}

function ownerOk(uid: number): boolean {
  const me = process.geteuid?.() ?? 0;
  return uid === 0 || uid === me;
}

/**
 * Reads every DOMAIN.SELECTOR.key file of `directory`. A directory that does
 * not exist gives an empty keyring; problems come back as warnings.
 */
export function loadDkimKeys(directory: string, warn: (text: string) => void): DkimKeyring {
  const ring = new DkimKeyring(directory);
  let dir;
  try {
    dir = lstatSync(directory);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") warn(`cannot read the DKIM key directory "${directory}": ${(err as Error).message}`);
    return ring;
  }
  if (!dir.isDirectory() || !ownerOk(dir.uid) || (dir.mode & 0o022) !== 0) {
    warn(`DKIM key directory "${directory}" is not a directory owned by root and writable only by it: no keys read`);
    return ring;
  }
  let names: string[];
  try {
    names = readdirSync(directory).filter((n) => n.endsWith(".key")).sort();
  } catch (err) {
    warn(`cannot list the DKIM key directory "${directory}": ${(err as Error).message}`);
    return ring;
  }
  if (names.length > MAX_KEYS) {
    warn(`DKIM key directory "${directory}" holds more than ${MAX_KEYS} keys: only the first ${MAX_KEYS} are read`);
    names = names.slice(0, MAX_KEYS);
  }
  for (const name of names) {
    const path = join(directory, name);
    try {
      ring.set(name.toLowerCase(), readKeyFile(path));
    } catch (err) {
      warn(`DKIM key "${path}" skipped: ${(err as Error).message}`);
    }
  }
  return ring;
}

function readKeyFile(path: string): KeyObject {
  const fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.nlink !== 1) throw new Error("not a regular file with one link");
    if (!ownerOk(st.uid)) throw new Error(`owned by uid ${st.uid}, not root`);
    if ((st.mode & 0o077) !== 0) throw new Error(`mode ${(st.mode & 0o777).toString(8)} lets others read it (chmod 600)`);
    if (st.size > MAX_KEY_BYTES) throw new Error(`larger than ${MAX_KEY_BYTES} bytes`);
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    const key = createPrivateKey({ key: buf.subarray(0, got), format: "pem" });
    const type = key.asymmetricKeyType;
    if (type !== "rsa" && type !== "ed25519") throw new Error(`a ${type} key; DKIM signs with RSA or Ed25519`);
    if (type === "rsa" && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 1024) throw new Error("an RSA key shorter than 1024 bits (RFC 8301)");
    return key;
  } finally {
    closeSync(fd);
  }
}

/** The TXT record's text for the public half of `key`: "v=DKIM1; k=rsa; p=...". */
export function dkimRecordText(key: KeyObject): string {
  const pub = createPublicKey(key);
  if (pub.asymmetricKeyType === "ed25519") {
    // RFC 8463: the bare 32-byte key, not the SubjectPublicKeyInfo
    const spki = pub.export({ format: "der", type: "spki" });
    return `v=DKIM1; k=ed25519; p=${spki.subarray(spki.length - 32).toString("base64")}`;
  }
  return `v=DKIM1; k=rsa; p=${pub.export({ format: "der", type: "spki" }).toString("base64")}`;
}

/** The record as a zone-file line, split in strings of at most 255 bytes: `SELECTOR._domainkey.DOMAIN. IN TXT ( "..." "..." )`. */
export function dkimZoneLine(domain: string, selector: string, text: string): string {
  const strings: string[] = [];
  for (let i = 0; i < text.length; i += 250) strings.push(`"${text.slice(i, i + 250)}"`);
  return `${selector}._domainkey.${domain}. 3600 IN TXT ( ${strings.join("\n\t")} )`;
}
