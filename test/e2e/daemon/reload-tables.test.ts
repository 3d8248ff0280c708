/**
 * What a reload leaves open in the queue manager: each reload names other hash: tables for the
 * resolver (relocated_maps) and for the SMTP client (smtp_generic_maps), and a message relayed to
 * the Python sink after it is resolved and sent with them. The tables of the replaced
 * configurations must be closed (their index files no longer open in the qmgr process,
 * /proc/PID/fd), while the current ones serve.
 *
 * Root only (the system drops to mail_owner, which reads the world-readable tables under etc/).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readlinkSync } from "node:fs";
import { HOST, isRoot, message, waitFor } from "../../helpers/mail-system.ts";
import { relayToSink, type RelayToSink } from "../../helpers/relay-sink.ts";

let bench: RelayToSink;

async function hashTable(name: string, text: string): Promise<string> {
  const path = bench.sys.etcFile(name, text);
  const r = await bench.sys.postern(["postmap", `hash:${path}`]);
  if (r.code !== 0) throw new Error(`postmap: ${r.stderr}`);
  return `hash:${path}`;
}

/** Names generation `g`'s tables in the configuration, reloads, and waits until the queue manager has taken it. */
async function reloadWith(g: string): Promise<void> {
  const { sys } = bench;
  sys.writeConfig({
    relocated_maps: await hashTable(`reloc-${g}`, `gone@remote.example ${g}@elsewhere.example\n`),
    smtp_generic_maps: await hashTable(`generic-${g}`, `his@${HOST} ${g}@isp.example\n`),
  });
  const count = () => sys.log().match(/qmgr\[\d+\]: reload: configuration re-read/g)?.length ?? 0;
  const before = count();
  const r = await sys.postern(["reload"]);
  if (r.code !== 0) throw new Error(`postern reload: ${r.stderr}`);
  await waitFor("the queue manager to re-read its configuration", () => count() > before);
}

/** The reloc-* and generic-* index files the queue manager has open now. */
function openTables(): string[] {
  const pid = bench.sys.roles().get("qmgr");
  if (pid === undefined) throw new Error("no qmgr process");
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /\/((?:reloc|generic)-\w+)\.sqlite$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.push(m[1]!);
    } catch {}
  }
  return out.sort();
}

describe.skipIf(!isRoot)("the queue manager across reloads", () => {
  beforeAll(async () => {
    // every recipient is relayed to the sink: the host's own domain is not a local destination here
    bench = await relayToSink({ mynetworks: "127.0.0.0/8", mydestination: "" });
  }, 60_000);
  afterAll(() => bench?.stop(), 30_000);

  test("the resolver's and the SMTP client's tables of replaced configurations are closed", async () => {
    for (const g of ["g1", "g2", "g3", "g4"]) {
      await reloadWith(g);
      await bench.sys.send(["friend@remote.example"], message(`reload-${g}`), { sender: `his@${HOST}` });
      expect((await bench.atSink(`reload-${g}`)).mail_from).toBe(`${g}@isp.example`);
    }
    // the last delivery may still hold its configuration for a moment
    await waitFor("only the current tables open", () => openTables().join() === "generic-g4,reloc-g4", 10_000).catch(() => undefined);
    expect(openTables()).toEqual(["generic-g4", "reloc-g4"]);
  }, 90_000);
});
