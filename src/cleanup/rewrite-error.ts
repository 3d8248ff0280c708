/**
 * A rewrite in cleanup that could not be done now (a table that cannot be
 * read, an expansion over Postfix's limits): the message is not queued and
 * is tried again later. pickup leaves the file in maildrop/; smtpd answers
 * with a 4xx reply (451 4.3.0 for a lookup failure, as Postfix's
 * CLEANUP_STAT_WRITE, otherwise the status and reason given here).
 *
 * Data only; used by pickup and smtpd as mail_owner.
 */
export class CleanupDeferral extends Error {
  constructor(
    /** The warning cleanup logs, without the queue ID. */
    readonly warning: string,
    /** A table could not be read (Postfix's CLEANUP_STAT_WRITE), rather than a limit was hit. */
    readonly lookupFailed: boolean,
    /** Enhanced status and text, as Postfix's cleanup reports them. */
    readonly status = "4.3.0",
    readonly reason = "Error: queue file write error",
  ) {
    super(warning);
    this.name = "CleanupDeferral";
  }
}
