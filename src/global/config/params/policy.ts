/**
 * Policy delegation (SMTPD_POLICY_README) and after-queue content filters
 * (FILTER_README): the check_policy_service client's limits and the
 * content_filter that the SMTP server writes into each queue file and the
 * queue manager honours.
 */
import { p, refusing, t, type ParamDef } from "../param-def.ts";
import { refuseUnknownTransport } from "../value-checks.ts";

const SMTPD = ["smtpd"];

export const policyParams = (): ParamDef[] => [
  t("smtpd_policy_service_timeout", "s", "100s", "Time limit for connecting to, writing to, or reading from a policy server", SMTPD),
  p("smtpd_policy_service_default_action", "str", "451 4.3.5 Server configuration problem", "What a policy lookup answers when the policy server cannot be reached", SMTPD),
  t("smtpd_policy_service_max_idle", "s", "300s", "Time after which an idle connection to a policy server is closed", SMTPD),
  t("smtpd_policy_service_max_ttl", "s", "1000s", "Time after which a connection to a policy server is closed, idle or not", SMTPD),
  p("smtpd_policy_service_try_limit", "int", "2", "Attempts to send a policy request before the default action applies", SMTPD),
  t("smtpd_policy_service_retry_delay", "s", "1s", "Delay between attempts to send a policy request", SMTPD),
  p("smtpd_policy_service_request_limit", "int", "0", "Requests per connection to a policy server (0: no limit)", SMTPD),
  p("smtpd_policy_service_policy_context", "str", "", "Text sent to policy servers as the policy_context attribute", SMTPD),
  refusing(p("content_filter", "str", "", "After-queue content filter (transport:nexthop) for mail the SMTP server receives", ["smtpd", "qmgr"]), refuseUnknownTransport),
  p("default_filter_nexthop", "str", "", "Next hop of a content filter that names none", ["qmgr"]),
];
