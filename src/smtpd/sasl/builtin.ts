/**
 * The built-in SASL backend (smtpd_sasl_type = builtin): PLAIN (RFC 4616)
 * and LOGIN, checked against smtpd_sasl_users_maps, tables of user names
 * and argon2 or bcrypt password hashes (Bun.password; `postern saslpasswd
 * USER` writes them). A single-binary install needs no other daemon.
 *
 * smtpd_sasl_security_options / smtpd_sasl_tls_security_options:
 * `noplaintext` hides both mechanisms (they are plaintext mechanisms), so
 * with it they are offered under TLS only.
 *
 * A user that does not exist costs a hash verification too, so response
 * times do not tell which names exist. Runs in smtpd as mail_owner; the
 * client's responses are untrusted and bounded by smtpd_sasl_response_limit.
 */
import type { Config } from "../../global/config/config.ts";
import { openTable } from "../../global/tables/open-table.ts";
import type { SaslExchange, SaslServer, SaslStep, SessionView } from "../protocol/types.ts";

const USERNAME = Buffer.from("Username:").toString("base64");
const PASSWORD = Buffer.from("Password:").toString("base64");
/** A valid hash of a random password, verified for unknown users. */
let decoyHash: Promise<string> | undefined;

function decode(b64: string): string {
  return Buffer.from(b64, "base64").toString("utf8");
}

export function offeredMechanisms(config: Config, tls: boolean): string[] {
  const options = config.list(tls ? "smtpd_sasl_tls_security_options" : "smtpd_sasl_security_options").map((o) => o.toLowerCase());
  return options.includes("noplaintext") ? [] : ["PLAIN", "LOGIN"];
}

export class BuiltinSasl implements SaslServer {
  constructor(private config: Config) {}

  mechanisms(tls: boolean): string[] {
    return offeredMechanisms(this.config, tls);
  }

  start(mechanism: string, _session: SessionView): SaslExchange | undefined {
    switch (mechanism) {
      case "PLAIN":
        return this.#plain();
      case "LOGIN":
        return this.#login();
      default:
        return undefined;
    }
  }

  /** Verifies a user's password; the user name as the server records it, or undefined. */
  async verify(user: string, password: string): Promise<string | undefined> {
    const domain = this.config.str("smtpd_sasl_local_domain");
    const name = domain && !user.includes("@") ? `${user}@${domain}` : user;
    let hash: string | undefined;
    for (const spec of this.config.list("smtpd_sasl_users_maps")) {
      hash = await openTable(spec, this.config).lookup(name);
      if (hash !== undefined) break;
    }
    hash = hash?.trim().split(/\s+/)[0];
    if (!hash || !/^\$(argon2(id|i|d)|2[aby]?)\$/.test(hash)) {
      decoyHash ??= Bun.password.hash(crypto.randomUUID());
      await Bun.password.verify(password, await decoyHash).catch(() => false);
      return undefined;
    }
    const ok = await Bun.password.verify(password, hash).catch(() => false);
    return ok ? name : undefined;
  }

  #plain(): SaslExchange {
    return {
      step: async (response): Promise<SaslStep> => {
        if (response === undefined) return { kind: "challenge", challenge: "" };
        const parts = decode(response).split("\0");
        if (parts.length !== 3) return { kind: "failure", reason: "authentication failure" };
        const [authzid, authcid, password] = parts as [string, string, string];
        if (authzid !== "" && authzid !== authcid) return { kind: "failure", reason: "authentication failure" };
        const user = await this.verify(authcid, password);
        return user ? { kind: "success", username: user } : { kind: "failure", reason: "authentication failure" };
      },
    };
  }

  #login(): SaslExchange {
    let username: string | undefined;
    return {
      step: async (response): Promise<SaslStep> => {
        if (username === undefined) {
          if (response === undefined) return { kind: "challenge", challenge: USERNAME };
          username = decode(response);
          return { kind: "challenge", challenge: PASSWORD };
        }
        const user = await this.verify(username, decode(response ?? ""));
        return user ? { kind: "success", username: user } : { kind: "failure", reason: "authentication failure" };
      },
    };
  }
}
