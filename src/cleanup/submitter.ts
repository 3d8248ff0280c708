/**
 * Who is submitting: the login name of the real uid (the default envelope
 * sender, unqualified; cleanup adds @$myorigin) and the full name for a
 * generated From: header (-F, else $NAME, else the GECOS field up to its
 * first comma with `&` standing for the capitalized login, as Postfix's
 * fullname() reads it).
 *
 * Runs as the submitting user; the password file is trusted, $NAME is the
 * user's own choice.
 */
import { getpwuid } from "../util/passwd.ts";

export interface Submitter {
  uid: number;
  /** undefined when the uid has no password entry. */
  login?: string;
  gecos?: string;
}

export function currentSubmitter(): Submitter {
  const uid = process.getuid?.() ?? 0;
  const pw = getpwuid(uid);
  return pw ? { uid, login: pw.name, gecos: pw.gecos } : { uid };
}

export function gecosFullName(gecos: string, login: string): string {
  const field = gecos.split(/[,;%]/)[0] ?? "";
  const cap = login ? login[0]!.toUpperCase() + login.slice(1) : "";
  return field.replace(/&/g, cap).trim();
}

export function fullNameFor(submitter: Submitter, option: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (option !== undefined) return option;
  if (env.NAME !== undefined) return env.NAME;
  if (submitter.gecos !== undefined && submitter.login !== undefined) return gecosFullName(submitter.gecos, submitter.login) || undefined;
  return undefined;
}
