/**
 * Content inspection parameters: header_checks(5) and body_checks in
 * cleanup (mail from smtpd and from sendmail/pickup), their smtp_ and lmtp_
 * forms in the SMTP/LMTP client on the way out, the MIME limits that bound
 * the reader they share (global/message/mime-reader.ts), and
 * receive_override_options, which turns content checks, address mappings,
 * unknown-recipient checks and milters off for a receiving service.
 */
import { p, refusing, type ParamDef } from "../param-def.ts";
import { RECEIVE_OVERRIDE_NAMES } from "../receive-override.ts";

const CLEANUP = ["cleanup", "pickup", "smtpd"];
const CLIENT = ["qmgr", "smtp"];

function clientChecks(prefix: "smtp" | "lmtp", word: string): ParamDef[] {
  return [
    p(`${prefix}_header_checks`, "list", "", `Tables of actions on primary headers of mail the ${word} client sends`, CLIENT),
    p(`${prefix}_mime_header_checks`, "list", "", `Tables of actions on MIME headers of mail the ${word} client sends`, CLIENT),
    p(`${prefix}_nested_header_checks`, "list", "", `Tables of actions on headers of attached messages the ${word} client sends`, CLIENT),
    p(`${prefix}_body_checks`, "list", "", `Tables of actions on body lines of mail the ${word} client sends`, CLIENT),
  ];
}

export const checksParams = (): ParamDef[] => [
  p("header_checks", "list", "", "Tables of actions on primary message headers (header_checks(5))", CLEANUP),
  p("mime_header_checks", "list", "$header_checks", "Tables of actions on MIME headers (Content-*, MIME-Version)", CLEANUP),
  p("nested_header_checks", "list", "$header_checks", "Tables of actions on headers of attached messages", CLEANUP),
  p("body_checks", "list", "", "Tables of actions on message body lines", CLEANUP),
  p("body_checks_size_limit", "int", "51200", "How much of each body part body_checks inspect (0: all)", [...CLEANUP, ...CLIENT]),
  p("mime_nesting_limit", "int", "100", "Maximal nesting of multipart boundaries the MIME reader follows", [...CLEANUP, ...CLIENT]),
  p("mime_boundary_length_limit", "int", "2048", "Maximal length of a MIME boundary the MIME reader keeps", [...CLEANUP, ...CLIENT]),
  ...clientChecks("smtp", "SMTP"),
  ...clientChecks("lmtp", "LMTP"),
  refusing(
    p("receive_override_options", "list", "", "Turn off content checks, address mappings, unknown-recipient checks or milters for mail a service receives", CLEANUP),
    (value) => {
      const bad = value
        .split(/[\s,]+/)
        .filter((w) => w !== "" && !RECEIVE_OVERRIDE_NAMES.includes(w.toLowerCase()));
      return bad.length ? `unknown receive_override_options value "${bad[0]}" (known: ${RECEIVE_OVERRIDE_NAMES.join(", ")})` : undefined;
    },
  ),
];
