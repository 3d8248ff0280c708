/** main.cf basics: identity, directories, owners, networks, logging. */
import { p, raw, installOnly, refusing, type ParamDef } from "../param-def.ts";
import { refuseFileValue, refuseInterfaceNames } from "../value-checks.ts";
import { defaultHostname, defaultMynetworks, domainOf } from "../host-defaults.ts";
import { VERSION } from "../../../version.ts";

const ALL = ["all"];

export const basicParams = (): ParamDef[] => [
  p("compatibility_level", "str", "3.7", "Backwards-compatibility level; postern starts at 3.7 (Postfix's built-in default is 0)", ALL),
  p("config_directory", "str", "/etc/postern", "Directory holding postern.toml", ALL),
  p("queue_directory", "str", "/var/spool/postern", "Root of the mail queue", ALL),
  installOnly(p("data_directory", "str", "/var/lib/postern", "Directory for postern's writable data (caches, locks)", ALL)),
  installOnly(p("process_id_directory", "str", "pid", "Directory, relative to queue_directory, with process id lock files", ["master", "postfix"])),
  installOnly(p("command_directory", "str", "/usr/sbin", "Where the administrative commands are installed", ["postfix"])),
  installOnly(p("daemon_directory", "str", "/usr/libexec/postern", "Where daemon programs would live (unused: one executable)", ["postfix"])),
  installOnly(p("sendmail_path", "str", "/usr/sbin/sendmail", "Path of the sendmail command", ["postfix"])),
  installOnly(p("newaliases_path", "str", "/usr/bin/newaliases", "Path of the newaliases command", ["postfix"])),
  installOnly(p("mailq_path", "str", "/usr/bin/mailq", "Path of the mailq command", ["postfix"])),
  p("mail_owner", "str", "postern", "Unprivileged user that owns the queue and runs the daemons", ALL),
  p("default_privs", "str", "nobody", "Rights used for deliveries to external files and commands from aliases", ["local"]),
  p("mail_name", "str", "postern", "The mail system name in the SMTP greeting and Received: headers", ALL),
  installOnly(p("mail_version", "str", VERSION, "The version of postern", ALL)),
  p("multi_instance_name", "str", "", "Optional name of this instance", ALL),
  p("myhostname", "str", () => defaultHostname(), "The fully-qualified name of this host", ALL),
  p("mydomain", "str", (c) => domainOf(c.expanded("myhostname")), "The domain name of this host", ALL),
  refusing(p("myorigin", "str", "$myhostname", "The domain that locally-posted mail appears to come from", ALL), refuseFileValue),
  p("mydestination", "list", "$myhostname, localhost.$mydomain, localhost", "Domains delivered locally (names, /file/name, type:table)", ALL),
  p("mynetworks_style", "str", "${{$compatibility_level} <level {2} ? {subnet} : {host}}", "How mynetworks is derived: host, subnet or class", ["smtpd"]),
  p("mynetworks", "list", (c) => defaultMynetworks(c.expanded("mynetworks_style")), "Trusted SMTP clients", ["smtpd"]),
  p("relay_domains", "list", "${{$compatibility_level} <level {2} ? {$mydestination} : {}}", "Domains this host relays mail to (names, /file/name, type:table)", ["smtpd", "qmgr"]),
  p("relayhost", "str", "", "Next-hop destination for non-local mail", ["qmgr", "smtp"]),
  refusing(p("inet_interfaces", "list", "all", "Network addresses this mail system receives mail on", ["master", "smtpd", "qmgr"]), refuseInterfaceNames),
  p("inet_protocols", "list", "all", "Internet protocols used: ipv4, ipv6, all", ALL),
  refusing(p("proxy_interfaces", "list", "", "Addresses that reach this host through a proxy or NAT", ["qmgr"]), refuseInterfaceNames),
  p("alias_maps", "list", "hash:/etc/aliases", "Alias tables used by local delivery", ["local"]),
  p("alias_database", "list", "hash:/etc/aliases", "Alias tables rebuilt by newaliases", ["newaliases"]),
  p("home_mailbox", "str", "", "Mailbox relative to the home directory (Maildir/ for Maildir)", ["local"]),
  p("mail_spool_directory", "str", "/var/mail", "Directory of UNIX-style mailboxes", ["local"]),
  raw(p("mailbox_command", "str", "", "External command that delivers to a mailbox", ["local"])),
  p("recipient_delimiter", "str", "", "Separators between user names and address extensions", ALL),
  p("message_size_limit", "int", "10240000", "Maximal size of a message in bytes", ["sendmail", "cleanup", "smtpd"]),
  p("syslog_name", "str", "${multi_instance_name?{$multi_instance_name}:{postfix}}", "Log tag prefix; \"postfix\" keeps pflogsumm and fail2ban filters working", ALL),
  p("syslog_facility", "str", "mail", "syslog facility of the log", ALL),
  p("maillog_file", "str", "", "Log file (or /dev/stdout); empty means syslog", ALL),
  p("syslog_socket_path", "str", "/dev/log", "postern: the syslog socket used when maillog_file is empty", ALL),
  p("import_environment", "list", "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ XAUTHORITY DISPLAY LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME", "Environment passed to child processes", ["master"]),
  p("default_process_limit", "int", "100", "Default maximal number of processes of a service", ["master", "qmgr"]),
  p("stress", "str", "", "Set by the master while the system is overloaded", ALL),
];
