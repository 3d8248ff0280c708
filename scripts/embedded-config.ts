/**
 * The embedded default configuration of `npm start` (scripts/start.ts):
 * everything under one directory, the queue in VAR/spool, mail as Maildirs
 * in VAR/mail/NAME/, SMTP on 127.0.0.1:2525. It is safe to expose: a local
 * part becomes a mailbox only when it is one visible file name (see
 * src/local/mailbox-name.ts), nothing is relayed (mynetworks is the
 * default), and only localhost is a local domain. Tests build the same text
 * with another listen address.
 */
import { join } from "node:path";

export function embeddedConfig(varDir: string, listen = "127.0.0.1:2525"): string {
  return `# postern's embedded default for npm start: everything under ${varDir}.
myhostname = "localhost"
mydestination = "localhost"
inet_interfaces = "loopback-only"
queue_directory = "${join(varDir, "spool")}"
data_directory = "${join(varDir, "lib")}"
# a trailing slash means Maildir, as in Postfix. Run unprivileged, any local part that is
# a plain file name (no "/", no leading ".", no control characters, at most 64 bytes) is a
# mailbox, written as the invoking user; run as root, only users in /etc/passwd are.
mail_spool_directory = "${join(varDir, "mail")}/"
local_recipient_maps = ""
alias_maps = ""
alias_database = ""
# short retry times for a development box
minimal_backoff_time = "10s"
maximal_backoff_time = "60s"
queue_run_delay = "10s"

[services.smtp]
listen = "${listen}"
`;
}
