/**
 * IMPORT_ENV="NAME=VALUE ..." for the profiling drivers (bench/profile-local.ts,
 * bench/sendmail-cpu.ts, bench/idle-memory.ts): the configuration change that
 * adds those settings to import_environment, the environment the master
 * gives the daemons it starts (an allocator option such as
 * MIMALLOC_PURGE_DELAY=1000, say, to measure it without a rebuild). Runs in
 * the bench driver as root; the value is the operator's own.
 */
const DEFAULT_IMPORT = "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ XAUTHORITY DISPLAY LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME";

export function importEnvChanges(): Record<string, string> {
  const extra = process.env.IMPORT_ENV?.trim();
  return extra ? { import_environment: `${DEFAULT_IMPORT} ${extra}` } : {};
}
