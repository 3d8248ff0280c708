/**
 * The texts of the systemd unit and the logrotate snippet `postern install`
 * writes. Pure functions of the layout and the configuration's paths.
 */

export interface UnitPaths {
  executable: string;
  configDir: string;
  queueDirectory: string;
  dataDirectory: string;
}

/** postern.service: the master in the foreground under systemd. */
export function systemdUnit(p: UnitPaths): string {
  return `# postern.service: written by \`postern install\`; \`postern uninstall\` removes it.
# Changes are lost when install rewrites it: put them in a drop-in
# (systemctl edit postern) instead.

[Unit]
Description=postern mail transport agent
After=network-online.target nss-lookup.target
Wants=network-online.target

[Service]
Type=simple
# start-fg validates the configuration, repairs the queue and runs the master;
# it passes SIGTERM (graceful stop), SIGQUIT and SIGHUP on to it.
ExecStart=${p.executable} start-fg -c ${p.configDir}
# SIGHUP: the master re-reads postern.toml and restarts its daemons.
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5s
# a configuration error (78) or bad usage (64) does not go away by restarting
RestartPreventExitStatus=64 78
# Only start-fg gets SIGTERM: the master then stops its daemons in order.
KillMode=mixed
TimeoutStopSec=60s

# Hardening. The master starts as root, binds port 25 and drops every daemon to
# mail_owner; local delivery switches to each recipient's uid and gid and writes
# to /var/mail, home directories (~/Maildir, .forward files) and runs their
# commands. So:
# - ProtectSystem=full (not strict): /usr, /boot and /etc are read-only, while
#   /var and /home stay writable for the queue, /var/mail and home mailboxes;
#   strict would refuse deliveries to files and commands outside a fixed list.
# - No ProtectHome: recipients' home directories are where their mail goes.
# - No NoNewPrivileges: postern's own drops (setgroups, setgid, setuid as root)
#   would work with it, but it would also strip the set-uid/set-gid bits of the
#   programs that local delivery runs for recipients (procmail, maildrop and
#   dovecot-lda set-ups, mailbox_command, "|command" aliases, a sendmail called
#   from .forward), which then fail to write where they must.
# - No RestrictSUIDSGID: the maildrop queue directory is set-gid (mode 3733) and
#   start-fg repairs its mode.
ProtectSystem=full
ReadWritePaths=-${p.queueDirectory} -${p.dataDirectory}
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK

[Install]
WantedBy=multi-user.target
`;
}

/** The logrotate snippet for maillog_file. */
export function logrotateSnippet(maillogFile: string): string {
  return `# Written by \`postern install\` for maillog_file; \`postern uninstall\` removes it.
# postern's processes keep the log open in append mode and do not reopen it, so
# the file is copied and truncated in place (copytruncate) instead of renamed.
"${maillogFile}" {
\tweekly
\trotate 4
\tmissingok
\tnotifempty
\tcompress
\tdelaycompress
\tcopytruncate
}
`;
}
