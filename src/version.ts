/** The version printed by `postern --version` and `postconf mail_version`. */
export const VERSION = "0.1.0";
