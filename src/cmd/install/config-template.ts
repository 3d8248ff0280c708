/**
 * The commented postern.toml that `postern install` writes when there is
 * none: the parameters most servers touch, each with a one-line
 * explanation and its default shown in a comment, as Postfix's
 * self-documenting main.cf does. Parameters given on the install command
 * line (name=value) and the ones a --prefix moves are set for real.
 *
 * Runs inside install; the given values were checked to be known parameter
 * names without control characters, and are written as TOML strings.
 */
import { defaultsOnlyConfig } from "../../global/config/config.ts";
import { paramDef } from "../../global/config/registry.ts";

interface Entry {
  name: string;
  help: string;
  /** Shown instead of the default when the default is computed from the host. */
  example?: string;
}

interface Section {
  title: string;
  entries: Entry[];
}

const SECTIONS: Section[] = [
  {
    title: "Identity",
    entries: [
      { name: "myhostname", help: "This host's fully-qualified name: the SMTP greeting, Received: lines, $myorigin (default: the system's name).", example: "mail.example.com" },
      { name: "mydomain", help: "This host's domain (default: $myhostname without its first label).", example: "example.com" },
      { name: "myorigin", help: "The domain that mail posted on this host comes from (user@$myorigin)." },
    ],
  },
  {
    title: "Receiving mail",
    entries: [
      { name: "mydestination", help: "Domains whose mail is delivered on this machine by local delivery." },
      { name: "inet_interfaces", help: "Addresses the SMTP server listens on: all, loopback-only, or a list." },
      { name: "inet_protocols", help: "IP versions used: all, ipv4, ipv6." },
      { name: "mynetworks_style", help: "Which clients may relay without logging in when mynetworks is unset: host, subnet or class." },
      { name: "mynetworks", help: "Clients trusted to relay, as networks (default: from mynetworks_style).", example: "127.0.0.0/8 [::1]/128" },
      { name: "relay_domains", help: "Other domains this server accepts and passes on (a backup MX)." },
      { name: "message_size_limit", help: "The largest message accepted, in bytes." },
      { name: "smtpd_relay_restrictions", help: "Who may send through this server to other domains." },
      { name: "smtpd_tls_security_level", help: "STARTTLS for incoming mail: none, may (offer it) or encrypt (require it)." },
      { name: "smtpd_tls_cert_file", help: "The server's certificate (postern tls new-server-cert makes a self-signed one)." },
      { name: "smtpd_tls_key_file", help: "The certificate's private key." },
    ],
  },
  {
    title: "Local delivery",
    entries: [
      { name: "alias_maps", help: "Alias tables local delivery reads (run newaliases after changing one)." },
      { name: "alias_database", help: "Alias tables newaliases rebuilds." },
      { name: "home_mailbox", help: 'Deliver into the home directory: "Maildir/" for a Maildir, "Mailbox" for an mbox; empty: mail_spool_directory.' },
      { name: "mail_spool_directory", help: "Where mbox files are kept when home_mailbox is empty." },
      { name: "mailbox_command", help: "A program that delivers instead (procmail, dovecot-lda); runs as the recipient." },
      { name: "recipient_delimiter", help: "Separator of address extensions (user+ext@domain)." },
    ],
  },
  {
    title: "Sending mail",
    entries: [
      { name: "relayhost", help: 'Send all outgoing mail through this host ("[smtp.example.com]:587"); empty: straight to each domain\'s MX.' },
      { name: "smtp_tls_security_level", help: "TLS for outgoing mail: none, may, encrypt, verify, secure." },
      { name: "smtp_sasl_auth_enable", help: "Log in to the relayhost (smtp_sasl_password_maps holds the password)." },
      { name: "smtp_sasl_password_maps", help: "The login for each relay host." },
    ],
  },
  {
    title: "Queue and logging",
    entries: [
      { name: "maximal_queue_lifetime", help: "How long undeliverable mail is retried before it is returned." },
      { name: "maillog_file", help: "Log to this file (install then adds a logrotate snippet); empty: syslog through /dev/log." },
      { name: "queue_directory", help: "The mail queue (created by postern check with its owners and modes)." },
      { name: "data_directory", help: "postern's own writable data." },
      { name: "mail_owner", help: "The unprivileged user the daemons run as; it owns the queue." },
    ],
  },
];

const tomlString = (text: string) => JSON.stringify(text);

function entryLines(entry: Entry, set: ReadonlyMap<string, string>): string[] {
  const lines = [`# ${entry.help}`];
  const value = set.get(entry.name);
  if (value !== undefined) {
    lines.push(`${entry.name} = ${tomlString(value)}`);
    return lines;
  }
  lines.push(`#${entry.name} = ${entry.example !== undefined ? tomlString(entry.example) : shownDefault(entry.name)}`);
  return lines;
}

/**
 * The default as a reader wants it: Postfix's compatibility-level choices
 * (`${{$compatibility_level} <level {2} ? ...}`) resolved to what they give
 * here, numbers and booleans as TOML numbers and booleans.
 */
function shownDefault(name: string): string {
  const def = paramDef(name);
  if (!def || typeof def.default !== "string") return '""';
  const text = def.default.includes("${{") ? defaultsOnlyConfig().str(name) : def.default;
  if (def.type === "int" && /^\d+$/.test(text)) return text;
  if (def.type === "bool" && (text === "yes" || text === "no")) return text === "yes" ? "true" : "false";
  return tomlString(text);
}

/** The text of a new postern.toml; `set` holds the parameters to set (everything else is a commented default). */
export function configTemplate(set: ReadonlyMap<string, string>): string {
  const out = [
    "# postern.toml: postern's main configuration, Postfix's main.cf in TOML.",
    "#",
    "# Written by `postern install`. Parameters have Postfix's names and defaults; a line",
    '# starting with "#name =" shows the default. Change what you need, then run',
    "# `postern check` and `postern reload`. `postconf -d` lists every parameter with its",
    "# default, `postconf -n` what this file sets; `postconf -e 'name = value'` edits it.",
    "",
  ];
  const listed = new Set<string>();
  for (const section of SECTIONS) {
    out.push(`# ---- ${section.title} ${"-".repeat(Math.max(4, 70 - section.title.length))}`, "");
    for (const entry of section.entries) {
      listed.add(entry.name);
      out.push(...entryLines(entry, set), "");
    }
  }
  const others = [...set].filter(([name]) => !listed.has(name));
  if (others.length) {
    out.push("# ---- Given to postern install ---------------------------------------", "");
    for (const [name, value] of others) out.push(`${name} = ${tomlString(value)}`);
    out.push("");
  }
  out.push(
    "# ---- Services (Postfix's master.cf) ---------------------------------",
    "#",
    "# smtp (port 25 on $inet_interfaces) runs by default. submission (587) and smtps (465)",
    "# are known with Postfix's example overrides and run once they have a [services.NAME]",
    "# table; any parameter in a table overrides the one above for that service (-o).",
    "",
    "#[services.smtp]",
    '#listen = "25"',
    "",
    "#[services.submission]",
    '#listen = "587"',
    "",
  );
  return out.join("\n");
}
