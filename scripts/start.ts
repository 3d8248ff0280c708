/**
 * `npm start`: runs postern in the foreground on the embedded default
 * configuration, unprivileged, with everything under ./var: the queue in
 * var/spool, mail for any address at localhost as a Maildir in
 * var/mail/LOCALPART/ (as root: only for users in /etc/passwd, so what it
 * prints says root@localhost then), the log on stdout. The configuration is
 * written to var/etc/postern.toml the first time (scripts/embedded-config.ts);
 * edit it freely afterwards.
 * POSTERN_VAR names another directory instead of ./var, POSTERN_DIST
 * another build instead of ./dist.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { embeddedConfig } from "./embedded-config.ts";

const root = resolve(import.meta.dir, "..");
// POSTERN_VAR puts everything elsewhere (the tests run a copy without touching ./var)
const varDir = process.env.POSTERN_VAR ? resolve(process.env.POSTERN_VAR) : join(root, "var");
const etc = join(varDir, "etc");
const config = join(etc, "postern.toml");
const dist = process.env.POSTERN_DIST ? resolve(process.env.POSTERN_DIST) : join(root, "dist");

mkdirSync(etc, { recursive: true });
mkdirSync(join(varDir, "mail"), { recursive: true });
if (!existsSync(config)) writeFileSync(config, embeddedConfig(varDir));

// Run as root, the daemons drop to mail_owner and local delivery writes as each recipient, so
// only users in /etc/passwd have a mailbox (as with Postfix): show the one every system has.
const asRoot = process.getuid?.() === 0;
const rcpt = asRoot ? "root" : "you";
if (asRoot) {
  console.warn(`npm start: running as root: the daemons drop to the mail_owner user (create it: postern check says how);
npm start: local mail goes only to users in /etc/passwd (run npm start as yourself to give any name a mailbox).`);
}
console.log(`postern: configuration ${config}
postern: send a test message with:
  echo "Subject: hello" | ${join(dist, "sendmail")} -C ${etc} -i ${rcpt}@localhost
postern: and read it in ${join(varDir, "mail", rcpt, "new")}/
postern: stop with Ctrl-C
`);
const proc = Bun.spawn([join(dist, "postern"), "start-fg", "-c", etc], { stdio: ["ignore", "inherit", "inherit"] });
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => proc.kill(sig === "SIGINT" ? "SIGTERM" : sig));
process.exit(await proc.exited);
