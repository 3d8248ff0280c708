/**
 * `npm start`: runs postern in the foreground on the embedded default
 * configuration, unprivileged, with everything under ./var: the queue in
 * var/spool, mail for any address at localhost as a Maildir in
 * var/mail/LOCALPART/, the log on stdout. The configuration is written to
 * var/etc/postern.toml the first time; edit it freely afterwards.
 * POSTERN_VAR names another directory instead of ./var, POSTERN_DIST
 * another build instead of ./dist.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
// POSTERN_VAR puts everything elsewhere (the tests run a copy without touching ./var)
const varDir = process.env.POSTERN_VAR ? resolve(process.env.POSTERN_VAR) : join(root, "var");
const etc = join(varDir, "etc");
const config = join(etc, "postern.toml");
const dist = process.env.POSTERN_DIST ? resolve(process.env.POSTERN_DIST) : join(root, "dist");

mkdirSync(etc, { recursive: true });
mkdirSync(join(varDir, "mail"), { recursive: true });
if (!existsSync(config)) {
  writeFileSync(
    config,
    `# postern's embedded default for npm start: unprivileged, everything under ./var.
myhostname = "localhost"
mydestination = "localhost"
inet_interfaces = "loopback-only"
queue_directory = "${join(varDir, "spool")}"
data_directory = "${join(varDir, "lib")}"
# a trailing slash means Maildir, as in Postfix; any local part is accepted
mail_spool_directory = "${join(varDir, "mail")}/"
local_recipient_maps = ""
alias_maps = ""
alias_database = ""
# short retry times for a development box
minimal_backoff_time = "10s"
maximal_backoff_time = "60s"
queue_run_delay = "10s"

[services.smtp]
listen = "127.0.0.1:2525"
`,
  );
}

if (process.getuid?.() === 0) {
  console.warn("npm start: running as root; the daemons will drop to the mail_owner user (create it: postern check says how).");
}
console.log(`postern: configuration ${config}
postern: send a test message with:
  echo "Subject: hello" | ${join(dist, "sendmail")} -C ${etc} -i you@localhost
postern: and read it in ${join(varDir, "mail", "you", "new")}/
postern: stop with Ctrl-C
`);
const proc = Bun.spawn([join(dist, "postern"), "start-fg", "-c", etc], { stdio: ["ignore", "inherit", "inherit"] });
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => proc.kill(sig === "SIGINT" ? "SIGTERM" : sig));
process.exit(await proc.exited);
