import { describe, expect, test } from "bun:test";
import { chooseMechanism, findCredentials, offeredMechanisms } from "../../../src/smtp/sasl.ts";
import { openTableUncached } from "../../../src/global/tables/open-table.ts";
import type { ClientSettings } from "../../../src/smtp/settings.ts";

describe("mechanism choice", () => {
  test("PLAIN first, then LOGIN, with noanonymous", () => {
    expect(chooseMechanism(["LOGIN", "PLAIN"], ["noanonymous"], [], false).mechanism).toBe("PLAIN");
    expect(chooseMechanism(["LOGIN", "CRAM-MD5"], ["noanonymous"], [], false).mechanism).toBe("LOGIN");
  });

  test("noplaintext (Postfix's default) leaves nothing, and the explanation says what was offered and why", () => {
    const c = chooseMechanism(["PLAIN", "LOGIN"], ["noplaintext", "noanonymous"], [], false);
    expect(c.mechanism).toBeUndefined();
    expect(c.explanation).toBe("server offered PLAIN LOGIN; we have PLAIN LOGIN; excluded: PLAIN (noplaintext), LOGIN (noplaintext)");
  });

  test("the mechanism filter limits the choice", () => {
    expect(chooseMechanism(["PLAIN", "LOGIN"], [], ["LOGIN"], false).mechanism).toBe("LOGIN");
    expect(chooseMechanism(["PLAIN"], [], ["LOGIN"], false).explanation).toContain("PLAIN (not in the mechanism filter)");
  });

  test("XOAUTH2 needs a token source and is preferred when there is one", () => {
    expect(chooseMechanism(["XOAUTH2", "PLAIN"], [], [], true).mechanism).toBe("XOAUTH2");
    expect(chooseMechanism(["XOAUTH2", "PLAIN"], [], [], false).mechanism).toBe("PLAIN");
    expect(chooseMechanism(["XOAUTH2"], [], [], false).explanation).toContain("XOAUTH2 (no token file or command)");
  });

  test("nothing we know", () => {
    expect(chooseMechanism(["GSSAPI", "CRAM-MD5"], [], [], false).explanation).toBe("server offered GSSAPI CRAM-MD5; we have PLAIN LOGIN");
  });

  test("offered mechanism words are bounded and deduplicated", () => {
    expect(offeredMechanisms(["plain", "LOGIN", "PLAIN", "x".repeat(50), "BAD$"])).toEqual(["PLAIN", "LOGIN"]);
  });
});

describe("password lookup", () => {
  const table = openTableUncached(
    "inline:{ {[smtp.example.com]:587 = relayuser:relaypass}, {mx.example.net = hostuser:hostpass:with:colons}, {alice@example.org = alice:secret}, {@example.org = domainuser:dpass} }",
    undefined,
  );
  const settings = (senderDependent: boolean) => ({ sasl: { senderDependent } }) as unknown as ClientSettings;

  test("by the destination as written", async () => {
    expect(await findCredentials([table], settings(false), "bob@example.com", "smtp.example.com", "[smtp.example.com]:587", "+")).toEqual({ username: "relayuser", password: "relaypass" });
  });

  test("by the server's host name before the destination; the password keeps its colons", async () => {
    expect(await findCredentials([table], settings(false), "bob@example.com", "mx.example.net", "example.net", "+")).toEqual({ username: "hostuser", password: "hostpass:with:colons" });
  });

  test("per sender first with sender-dependent authentication (address, then @domain)", async () => {
    expect(await findCredentials([table], settings(true), "alice@example.org", "smtp.example.com", "[smtp.example.com]:587", "+")).toEqual({ username: "alice", password: "secret" });
    expect(await findCredentials([table], settings(true), "carol@example.org", "smtp.example.com", "[smtp.example.com]:587", "+")).toEqual({ username: "domainuser", password: "dpass" });
    expect(await findCredentials([table], settings(false), "alice@example.org", "smtp.example.com", "[smtp.example.com]:587", "+")).toEqual({ username: "relayuser", password: "relaypass" });
  });

  test("none", async () => {
    expect(await findCredentials([table], settings(false), "", "other.example", "other.example", "+")).toBeUndefined();
  });
});
