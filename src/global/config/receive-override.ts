/**
 * receive_override_options (Postfix's input_transp.c): what a receiving
 * service leaves out for the mail it takes in, typically the listener that
 * an after-queue content filter re-injects through (FILTER_README):
 *
 * - no_unknown_recipient_checks: smtpd does not reject unlisted recipients
 *   or senders (recipient-checks.ts);
 * - no_address_mappings: cleanup does no canonical mapping, masquerading,
 *   virtual alias expansion or automatic BCC (cleanup/settings.ts);
 * - no_header_body_checks: cleanup runs no header_checks or body_checks;
 * - no_milters: no milter sees the mail (read by the milter code).
 *
 * These are all of Postfix's words; any other is refused by the parameter
 * check. Read from the service's configuration, so
 * `[services.NAME] receive_override_options = ...` overrides the main value.
 */
import type { Config } from "./config.ts";
import { splitList } from "./value-text.ts";

export const RECEIVE_OVERRIDE_NAMES: readonly string[] = ["no_unknown_recipient_checks", "no_address_mappings", "no_header_body_checks", "no_milters"];

export interface ReceiveOverrides {
  noUnknownRecipientChecks: boolean;
  noAddressMappings: boolean;
  noHeaderBodyChecks: boolean;
  noMilters: boolean;
}

export function receiveOverrides(config: Config): ReceiveOverrides {
  const words = new Set(splitList(config.str("receive_override_options")).map((w) => w.toLowerCase()));
  return {
    noUnknownRecipientChecks: words.has("no_unknown_recipient_checks"),
    noAddressMappings: words.has("no_address_mappings"),
    noHeaderBodyChecks: words.has("no_header_body_checks"),
    noMilters: words.has("no_milters"),
  };
}
