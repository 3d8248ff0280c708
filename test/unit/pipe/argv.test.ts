/** pipe(8)'s argv expansion (src/pipe/argv.ts), with the cases Postfix's pipe(8) man page describes. */
import { describe, expect, test } from "bun:test";
import { expandPipeArgv, MacroError, type PipeMessageValues } from "../../../src/pipe/argv.ts";

const message: PipeMessageValues = {
  sender: "owner@example.org",
  nexthop: "lists.example.net",
  size: "1234",
  queue_id: "ABC123",
  client_address: "192.0.2.7",
  client_hostname: "client.example.org",
  client_port: "40000",
  client_protocol: "ESMTP",
  client_helo: "helo.example.org",
  sasl_method: "",
  sasl_username: "sasluser",
  sasl_sender: "",
  envid: "",
};

describe("pipe argv expansion", () => {
  test("every per-recipient macro of one recipient, in ${}, $() and bare forms", () => {
    const argv = ["/usr/bin/list", "-f", "${sender}", "$(recipient)", "$user", "${extension}", "${domain}", "${mailbox}", "${nexthop}", "${original_recipient}", "--size=${size}", "${client_address}", "${sasl_username}"];
    expect(expandPipeArgv(argv, message, [{ address: "list+tag@lists.example.net", original: "alias@example.com" }], "+")).toEqual([
      "/usr/bin/list", "-f", "owner@example.org", "list+tag@lists.example.net", "list", "tag", "lists.example.net", "list+tag", "lists.example.net", "alias@example.com", "--size=1234", "192.0.2.7", "sasluser",
    ]);
  });

  test("without a recipient_delimiter ${user} is the whole local part and ${extension} is empty (an empty word is kept)", () => {
    expect(expandPipeArgv(["/bin/x", "${user}", "${extension}"], message, [{ address: "list+tag@lists.example.net", original: "list+tag@lists.example.net" }], "")).toEqual(["/bin/x", "list+tag", ""]);
  });

  test("a word with a per-recipient macro is repeated for every recipient, as separate words; other words once", () => {
    const rcpts = ["a@x.example", "b@y.example", "c@x.example"].map((address) => ({ address, original: address }));
    expect(expandPipeArgv(["/bin/deliver", "-f", "${sender}", "--", "${recipient}"], message, rcpts, "+")).toEqual(["/bin/deliver", "-f", "owner@example.org", "--", "a@x.example", "b@y.example", "c@x.example"]);
    expect(expandPipeArgv(["/bin/d", "-d${user}@${domain}"], message, rcpts, "+")).toEqual(["/bin/d", "-da@x.example", "-db@y.example", "-dc@x.example"]);
  });

  test("expansion is not recursive and never splits: an address holding $ or spaces stays one word as it is", () => {
    const evil = { address: '"$(rm -rf /) ${sender}"@x.example', original: "o@x.example" };
    expect(expandPipeArgv(["/bin/x", "${recipient}"], message, [evil], "+")).toEqual(["/bin/x", '"$(rm -rf /) ${sender}"@x.example']);
  });

  test("$$ is a literal dollar; an unknown macro or a missing brace is a configuration error", () => {
    expect(expandPipeArgv(["/bin/x", "cost$$5"], message, [], "")).toEqual(["/bin/x", "cost$5"]);
    expect(() => expandPipeArgv(["/bin/x", "${home}"], message, [], "")).toThrow(MacroError);
    expect(() => expandPipeArgv(["/bin/x", "${recipient"], message, [], "")).toThrow(MacroError);
  });
});
