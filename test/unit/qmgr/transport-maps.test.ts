/**
 * transport_maps across reloads (src/qmgr/transport-maps.ts): each configuration opens its own
 * table objects, so a reload reads a rebuilt index at once; a retired configuration's tables stay
 * open while a scheduling round holds it and close when it ends. A table's open index file is
 * seen in this process's /proc/self/fd.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { defaultsOnlyConfig } from "../../../src/global/config/config.ts";
import { holdConfig, retireConfig } from "../../../src/global/config/generation.ts";
import { indexPathOf, writeIndexFile } from "../../../src/global/tables/hash-index.ts";
import { TransportMaps } from "../../../src/qmgr/transport-maps.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";

const root = tempDir("postern-transport-maps-");
afterAll(() => removeDir(root));

/** hash:/root/NAME with `entries`; its spec. */
function hashTable(name: string, entries: Array<[string, string]>): string {
  const src = join(root, name);
  writeIndexFile(indexPathOf(src), entries, { mode: 0o644 });
  return `hash:${src}`;
}

/** How many descriptors of this process have `path` open. */
function openCount(path: string): number {
  let n = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) n++;
    } catch {}
  }
  return n;
}

describe("transport_maps of a replaced configuration", () => {
  test("stay open while a round holds it, and close when it ends", async () => {
    const spec = hashTable("transport", [["example.com", "smtp:[relay.example]"]]);
    const index = indexPathOf(spec.slice("hash:".length));
    const config = defaultsOnlyConfig().withOverrides({ transport_maps: spec });
    const maps = new TransportMaps(config);
    const round = holdConfig(config);
    const lookup = maps.lookup()!;
    expect(await lookup("example.com", false)).toBe("smtp:[relay.example]");
    expect(openCount(index)).toBe(1);

    // a reload: the next rounds use a new configuration's maps, this round goes on with its own
    const next = defaultsOnlyConfig().withOverrides({ transport_maps: spec });
    const nextMaps = new TransportMaps(next);
    retireConfig(config);
    expect(await lookup("example.com", false)).toBe("smtp:[relay.example]");
    expect(await nextMaps.lookup()!("example.com", false)).toBe("smtp:[relay.example]");
    expect(openCount(index)).toBe(2);
    round();
    expect(openCount(index)).toBe(1);
    retireConfig(next);
    expect(openCount(index)).toBe(0);
  });

  test("no tables, no lookup", () => {
    expect(new TransportMaps(defaultsOnlyConfig()).lookup()).toBeUndefined();
  });
});
