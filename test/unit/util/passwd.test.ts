import { afterAll, describe, expect, spyOn, test } from "bun:test";
import * as fs from "node:fs";
import { renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { getgrnam, getpwnam, getpwuid, groupsOf } from "../../../src/util/passwd.ts";
import { tempDir } from "../../helpers/run.ts";

const dir = tempDir("postern-passwd-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const line = (name: string, uid: number) => `${name}:x:${uid}:${uid}:${name}:/home/${name}:/bin/sh\n`;

describe("passwd lookups", () => {
  test("entries by name and uid, comments and short lines skipped", () => {
    const file = join(dir, "basic");
    writeFileSync(file, `# comment\n${line("alice", 1001)}broken:x:1\n${line("bob", 1002)}`);
    expect(getpwnam("alice", file)).toEqual({ name: "alice", uid: 1001, gid: 1001, gecos: "alice", home: "/home/alice", shell: "/bin/sh" });
    expect(getpwuid(1002, file)?.name).toBe("bob");
    expect(getpwnam("broken", file)).toBeUndefined();
    expect(getpwnam("nobody-here", file)).toBeUndefined();
    expect(getpwnam("alice", join(dir, "missing"))).toBeUndefined();
  });

  // issue 16: the local delivery agent looked users up several times per message, reading and parsing the file each time
  test("repeated lookups read an unchanged file once", () => {
    const file = join(dir, "repeated");
    writeFileSync(file, line("carol", 1003));
    const reads = spyOn(fs, "readFileSync");
    try {
      for (let i = 0; i < 10; i++) {
        expect(getpwnam("carol", file)?.uid).toBe(1003);
        expect(getpwuid(1003, file)?.name).toBe("carol");
      }
      expect(reads.mock.calls.filter((c) => c[0] === file).length).toBe(1);
    } finally {
      reads.mockRestore();
    }
  });

  test("a file rewritten in place, even with the same size, is read again", () => {
    const file = join(dir, "in-place");
    writeFileSync(file, line("dave", 1004));
    expect(getpwnam("dave", file)?.uid).toBe(1004);
    writeFileSync(file, line("dave", 1005));
    // the same size; a different mtime (set explicitly: the two writes may share a clock tick)
    utimesSync(file, new Date(1_000_000_000_000), new Date(1_000_000_000_000));
    expect(getpwnam("dave", file)?.uid).toBe(1005);
  });

  test("a file replaced by rename is read again, and a removed one finds nobody", () => {
    const file = join(dir, "renamed");
    writeFileSync(file, line("erin", 1006));
    expect(getpwnam("erin", file)?.uid).toBe(1006);
    const next = join(dir, "renamed.new");
    writeFileSync(next, line("erin", 1007) + line("frank", 1008));
    renameSync(next, file);
    expect(getpwnam("erin", file)?.uid).toBe(1007);
    expect(getpwnam("frank", file)?.uid).toBe(1008);
    rmSync(file);
    expect(getpwnam("erin", file)).toBeUndefined();
  });

  test("group lookups follow changes too", () => {
    const file = join(dir, "group");
    writeFileSync(file, "mail:x:8:alice\nstaff:x:50:\n");
    expect(getgrnam("mail", file)).toBe(8);
    expect(groupsOf("alice", 1001, file).sort((a, b) => a - b)).toEqual([8, 1001]);
    const next = join(dir, "group.new");
    writeFileSync(next, "mail:x:8:\nstaff:x:50:alice\n");
    renameSync(next, file);
    expect(groupsOf("alice", 1001, file).sort((a, b) => a - b)).toEqual([50, 1001]);
  });
});
