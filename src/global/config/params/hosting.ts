/** Hosting mail for other domains: the resolver's advice about domains listed in two address classes. */
import { p, type ParamDef } from "../param-def.ts";

export const hostingParams = (): ParamDef[] => [
  p("helpful_warnings", "bool", "yes", "Log warnings about configuration mistakes (a domain listed in two address classes)", ["smtpd", "qmgr", "postfix"]),
];
