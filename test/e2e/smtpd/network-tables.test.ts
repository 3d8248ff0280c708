/**
 * tcp: and socketmap: tables where smtpd uses them, against servers in the
 * test process: check_recipient_access asks a tcp_table server and a
 * socketmap server for the whole recipient address (pattern tables get no
 * partial keys); a REJECT from either refuses the recipient, a 400 or a
 * TEMP is 451 4.3.0 (never "not found"), and nothing found lets it through.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Answer, startSocketmapServer, startTcpTableServer } from "../../helpers/lookup-servers.ts";
import { HOST, SmtpdSystem, swaks } from "../../helpers/smtpd-system.ts";

const tcp = startTcpTableServer({}, (key): Answer => (key === `spam@${HOST}` ? "200 REJECT go%20away" : key === `later@${HOST}` ? "400 busy" : "500 no"));
const socketmap = startSocketmapServer({}, (map, key): Answer => {
  if (map !== "access") return "PERM unknown map";
  if (key === `junk@${HOST}`) return "OK 554 5.7.1 socketmap says no";
  if (key === `temp@${HOST}`) return "TEMP database is down";
  return "NOTFOUND ";
});
let sys: SmtpdSystem;

beforeAll(async () => {
  sys = new SmtpdSystem({
    smtpd_recipient_restrictions: `check_recipient_access tcp:${tcp.address}, check_recipient_access proxy:socketmap:inet:${socketmap.address}:access, permit`,
  });
  await sys.start();
}, 60_000);
afterAll(async () => {
  await sys?.cleanup();
  tcp.stop();
  socketmap.stop();
});

const rcpt = (to: string) => swaks(["--server", `127.0.0.1:${sys.port}`, "--quit-after", "RCPT", "--from", "sender@example.org", "--to", to]);

describe("check_recipient_access with tcp: and socketmap:", () => {
  test("a REJECT from either server refuses the recipient with its text", async () => {
    expect((await rcpt(`spam@${HOST}`)).out).toContain(`554 5.7.1 <spam@${HOST}>: Recipient address rejected: go away`);
    expect((await rcpt(`junk@${HOST}`)).out).toContain(`554 5.7.1 <junk@${HOST}>: Recipient address rejected: socketmap says no`);
  });

  test("a 400 or a TEMP is a temporary failure", async () => {
    expect((await rcpt(`later@${HOST}`)).out).toContain(`451 4.3.0 <later@${HOST}>: Recipient address rejected: Temporary lookup failure`);
    expect((await rcpt(`temp@${HOST}`)).out).toContain(`451 4.3.0 <temp@${HOST}>: Recipient address rejected: Temporary lookup failure`);
  });

  test("nothing found lets the recipient through; only whole addresses were asked for", async () => {
    expect((await rcpt(`root@${HOST}`)).out).toMatch(/RCPT TO:<root@.*>\n<- {2}250 /);
    expect(tcp.requests).toContain(`root@${HOST}`);
    expect(socketmap.requests).toContain(`access root@${HOST}`);
    expect([...tcp.requests, ...socketmap.requests].every((r) => r.includes(`@${HOST}`))).toBe(true);
  });
});
