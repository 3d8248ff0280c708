/**
 * LocalServices' user lookups (src/local/services.ts): the answers of one
 * synchronous step of a delivery are reused (each lookup is a stat(2) of the
 * passwd file), and the next step asks the file again and sees a change.
 */
import { afterAll, expect, spyOn, test } from "bun:test";
import * as fs from "node:fs";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LocalServices } from "../../../src/local/services.ts";
import { InProcessPerformer } from "../../../src/local/worker/performer.ts";
import type { LocalSettings } from "../../../src/local/settings.ts";
import { tempDir } from "../../helpers/run.ts";

const dir = tempDir("postern-local-services-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("lookups of one step stat the passwd file once; after an await a change is seen", async () => {
  const file = join(dir, "passwd");
  writeFileSync(file, "dora:x:1004:1004:Dora:/home/dora:/bin/sh\n");
  const services = new LocalServices({ settings: {} as LocalSettings, performer: new InProcessPerformer(), privileged: true, openTable: () => Promise.reject(new Error("no tables")), passwdFile: file });
  const stats = spyOn(fs, "statSync");
  try {
    // as the .forward search does: the user, then its job's identity (a lookup by name), twice
    const pw = services.getpwnam("dora")!;
    expect(services.identity(services.userAttr(pw))).toEqual({ uid: 1004, gid: 1004, user: "dora" });
    expect(services.identity(services.userAttr(pw))).toEqual({ uid: 1004, gid: 1004, user: "dora" });
    expect(services.getpwuid(1004)?.name).toBe("dora");
    expect(stats.mock.calls.filter((c) => c[0] === file)).toHaveLength(2); // one by name, one by uid
    await Promise.resolve();
    writeFileSync(file, "dora:x:1005:1005:Dora:/home/dora:/bin/sh\n");
    expect(services.getpwnam("dora")?.uid).toBe(1005);
    expect(services.getpwuid(1004)).toBeUndefined();
  } finally {
    stats.mockRestore();
  }
});
