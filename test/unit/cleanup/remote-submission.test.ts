import { describe, expect, test } from "bun:test";
import { defaultsOnlyConfig } from "../../../src/global/config/config.ts";
import { cleanupSettings } from "../../../src/cleanup/settings.ts";
import { cleanupRemoteSubmission, type RemoteSubmission } from "../../../src/cleanup/remote-submission.ts";

const settings = (o: Record<string, string> = {}) =>
  cleanupSettings(defaultsOnlyConfig().withOverrides({ myhostname: "mx.example.test", mydomain: "example.test", myorigin: "example.test", ...o }));

function sub(content: string, over: Partial<RemoteSubmission> = {}): RemoteSubmission {
  return {
    arrival: new Date("2026-01-02T03:04:05Z"),
    sender: "a@example.org",
    recipients: [{ address: "b@example.test" }],
    content: Buffer.from(content, "latin1"),
    received: (id) => `Received: from h (client.example [192.0.2.1])\n\tby mx.example.test (postern) with ESMTP id ${id}`,
    prepend: [],
    attributes: { client_address: "192.0.2.1", protocol: "ESMTP" },
    rewriteContext: "remote",
    ...over,
  };
}

describe("cleanup for SMTP clients", () => {
  test("remote context: Received: (after PREPEND headers) on top, nothing added, attributes kept", () => {
    const r = cleanupRemoteSubmission(sub("Subject: x\n\nbody\n", { prepend: ["X-Tag: yes"] }), settings(), "Q1");
    if (!("file" in r)) throw new Error("rejected");
    expect(Buffer.from(r.file.content).toString()).toBe("X-Tag: yes\nReceived: from h (client.example [192.0.2.1])\n\tby mx.example.test (postern) with ESMTP id Q1\nSubject: x\n\nbody\n");
    expect(r.file.attributes).toEqual({ client_address: "192.0.2.1", protocol: "ESMTP", rewrite_context: "remote", origin: "smtpd" });
    expect(r.file.recipients).toEqual([{ address: "b@example.test", original: "b@example.test", orcpt: "rfc822;b@example.test" }]);
    expect(r.logs).toEqual(["message-id=<>"]);
  });

  test("local context (local_header_rewrite_clients): Message-Id, Date and From added", () => {
    const r = cleanupRemoteSubmission(sub("Subject: x\n\nbody\n", { rewriteContext: "local" }), settings(), "Q2");
    if (!("file" in r)) throw new Error("rejected");
    const text = Buffer.from(r.file.content).toString();
    expect(text).toMatch(/\nMessage-Id: <\d+\.Q2@mx\.example\.test>\nDate: .*\nFrom: a@example\.org\n\nbody\n$/);
  });

  test("too many hops and too big are refused with Postfix's replies, not queued", () => {
    const hops = "Received: x\n".repeat(50) + "\nbody\n";
    const r = cleanupRemoteSubmission(sub(hops), settings(), "Q3");
    expect("rejection" in r && r.rejection).toMatchObject({ code: 554, dsn: "5.4.0", text: "Error: too many hops" });
    const big = cleanupRemoteSubmission(sub("Subject: x\n\n" + "y".repeat(2000) + "\n"), settings({ message_size_limit: "1000" }), "Q4");
    expect("rejection" in big && big.rejection).toMatchObject({ code: 552, dsn: "5.3.4", text: "Error: message file too big" });
  });
});
