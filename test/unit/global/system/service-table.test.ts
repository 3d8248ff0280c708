/**
 * The service table (src/global/system/service-table.ts) is consistent: every
 * served channel has exactly one server, every used channel is served, the
 * master passes every unix socket it makes to a role it starts, every role is
 * a `postern` command, and the sockets the services open are the table's.
 */
import { describe, expect, test } from "bun:test";
import { CHANNELS, daemonEntry as entry, masterSingletons, SERVICE_TABLE, servedSocket, startedOnDemand, type ChannelName, type DaemonRole } from "../../../../src/global/system/service-table.ts";
import { SERVICE_SOCKETS } from "../../../../src/global/ipc/service-sockets.ts";
import { ROLES } from "../../../../src/roles.ts";

const roles = Object.keys(SERVICE_TABLE) as DaemonRole[];
const channels = Object.keys(CHANNELS) as ChannelName[];

describe("the service table", () => {
  test("every channel has exactly one serving role", () => {
    for (const c of channels) expect([c, roles.filter((r) => entry(r).serves.includes(c))]).toEqual([c, [expect.any(String)]]);
  });

  test("every used channel is served, and no role uses what it serves", () => {
    for (const r of roles) {
      for (const c of entry(r).uses) {
        expect([r, c, c in CHANNELS]).toEqual([r, c, true]);
        expect([r, c, entry(r).serves.includes(c)]).toEqual([r, c, false]);
      }
    }
  });

  test("a unix socket has a path and a mode and is served by a role the master starts; a role serves at most one", () => {
    for (const c of channels.filter((n) => CHANNELS[n].kind === "unix")) {
      expect([c, CHANNELS[c].path, CHANNELS[c].mode]).toEqual([c, expect.stringMatching(/^(private|public)\/[a-z]+$/), expect.any(Number)]);
      const server = roles.find((r) => entry(r).serves.includes(c))!;
      expect([c, entry(server).startedBy]).toEqual([c, "master"]);
    }
    for (const r of roles) expect([r, entry(r).serves.filter((c) => CHANNELS[c].kind === "unix").length <= 1]).toEqual([r, true]);
  });

  test("only the master and the local service keep root; the worker becomes the recipient; everything else is mail_owner's", () => {
    const by = (who: string) => roles.filter((r) => entry(r).runsAs === who).sort();
    expect(by("root")).toEqual(["local", "master"]);
    expect(by("recipient")).toEqual(["local-worker"]);
    expect(by("mail_owner")).toEqual(["pickup", "qmgr", "showq", "smtpd"]);
    // a role that faces the network or every local user never keeps root
    for (const r of roles) {
      const faces = entry(r).serves.some((c) => CHANNELS[c].outsideClients !== undefined) || entry(r).wakeUp?.watch === "maildrop";
      if (faces) expect([r, entry(r).runsAs]).toEqual([r, "mail_owner"]);
    }
  });

  test("who starts what: the user the master, the master its services, the local service its workers", () => {
    expect(roles.filter((r) => entry(r).startedBy === "user")).toEqual(["master"]);
    expect(roles.filter((r) => entry(r).startedBy === "local")).toEqual(["local-worker"]);
    expect(masterSingletons()).toEqual(["local", "qmgr", "showq", "pickup"]);
    expect(roles.filter((r) => entry(r).processLimit === "per service")).toEqual(["smtpd"]);
  });

  test("showq and local start on demand by a connection on the socket they serve, smtpd by one on its service's sockets, pickup by an entry in maildrop/, qmgr by either a connection or a queue file; the master starts itself", () => {
    expect(roles.filter((r) => startedOnDemand(r))).toEqual(["local", "qmgr", "showq", "pickup", "smtpd"]);
    for (const r of roles.filter((x) => startedOnDemand(x))) {
      // the master starts it (one process; smtpd one per service) and holds the socket, or watches the directory, that wakes it
      expect([r, entry(r).startedBy, entry(r).processLimit]).toEqual([r, "master", r === "smtpd" ? "per service" : 1]);
      if (r === "smtpd") expect([r, entry(r).onDemand, entry(r).serves]).toEqual([r, "connection", ["smtpd listeners"]]);
      else if (entry(r).onDemand === "connection" || entry(r).onDemand === "queue") expect([r, servedSocket(r)?.kind]).toEqual([r, "unix"]);
      if (entry(r).onDemand === "queue") expect([r, entry(r).wakeUp?.watch]).toEqual([r, "incoming"]);
      else if (entry(r).onDemand !== "connection") expect([r, entry(r).onDemand, entry(r).wakeUp?.watch]).toEqual([r, "maildrop", "maildrop"]);
    }
  });

  test("wake-ups name a queue directory and a poll interval", () => {
    expect(SERVICE_TABLE.pickup.wakeUp).toEqual({ watch: "maildrop", pollSeconds: 60 });
    expect(SERVICE_TABLE.qmgr.wakeUp).toEqual({ watch: "incoming", pollSeconds: 1 });
    for (const r of roles) {
      const w = entry(r).wakeUp;
      if (w) expect([r, w.pollSeconds > 0, ["maildrop", "incoming", undefined].includes(w.watch)]).toEqual([r, true, true]);
    }
  });

  test("every role is an internal postern command", () => {
    for (const r of roles) expect([r, ROLES[r]?.internal]).toEqual([r, true]);
  });

  test("the services' sockets are the table's", () => {
    expect(SERVICE_SOCKETS.map((s) => [s.role, s.path, s.mode])).toEqual(
      roles.flatMap((r) => {
        const s = servedSocket(r);
        return s ? [[r, s.path, s.mode]] : [];
      }),
    );
    expect(SERVICE_SOCKETS.map((s) => s.path).sort()).toEqual(["private/local", "public/qmgr", "public/showq"]);
  });
});
