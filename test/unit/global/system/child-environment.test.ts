/**
 * The environments postern hands on (src/global/system/child-environment.ts):
 * a daemon's from import_environment, and export_environment's for the
 * commands delivery runs and for the local workers. A BUN_ variable never
 * reaches a postern process (it would set the runtime's options, as root for
 * the workers), in either form; commands get what the list names. postern's
 * own processes get the allocator's settings (ALLOCATOR_ENVIRONMENT), which
 * the lists may override.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { Config } from "../../../../src/global/config/config.ts";
import { configSourceFromText } from "../../../../src/global/config/source.ts";
import { ALLOCATOR_ENVIRONMENT, addExported, childEnvironment, profileRecording } from "../../../../src/global/system/child-environment.ts";
import { workerEnvironment } from "../../../../src/local/agent.ts";

const saved = { BUN_OPTIONS: process.env.BUN_OPTIONS, TZ: process.env.TZ, PN_TEST_VAR: process.env.PN_TEST_VAR, BUN_BYTECODE_ORDER_OUT: process.env.BUN_BYTECODE_ORDER_OUT };
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

const config = (text: string) => new Config(configSourceFromText(text, "/etc/postern"));

describe("childEnvironment", () => {
  test("import_environment copies and sets names, never BUN_ ones; PATH and MAIL_CONFIG are fixed", () => {
    process.env.BUN_OPTIONS = "--preload /tmp/evil.js";
    process.env.PN_TEST_VAR = "copied";
    const env = childEnvironment(config(`import_environment = ["PN_TEST_VAR", "LANG=C", "BUN_OPTIONS", "BUN_BE_BUN=1"]\n`), "/etc/postern");
    expect(env).toEqual({ PATH: "/usr/bin:/bin:/usr/sbin:/sbin", ...ALLOCATOR_ENVIRONMENT, PN_TEST_VAR: "copied", LANG: "C", MAIL_CONFIG: "/etc/postern" });
  });

  test("daemons and the local workers get the allocator's purge settings; the operator's lists override them", () => {
    // the mi-scavenger thread sweeps an idle thread's heaps at most once a second, not every 100 ms (bench/README.md)
    expect(ALLOCATOR_ENVIRONMENT).toEqual({ MIMALLOC_PURGE_HOLES_MIN_INTERVAL: "1000", MIMALLOC_PURGE_DELAY: "1000" });
    expect(childEnvironment(config(""), "/etc/postern")).toMatchObject(ALLOCATOR_ENVIRONMENT);
    expect(workerEnvironment(config(""))).toMatchObject(ALLOCATOR_ENVIRONMENT);
    expect(childEnvironment(config(`import_environment = ["MIMALLOC_PURGE_DELAY=100"]\n`), "/etc/postern").MIMALLOC_PURGE_DELAY).toBe("100");
    expect(workerEnvironment(config(`export_environment = ["MIMALLOC_PURGE_HOLES_MIN_INTERVAL=100"]\n`)).MIMALLOC_PURGE_HOLES_MIN_INTERVAL).toBe("100");
  });
});

describe("profileRecording", () => {
  test("a starter recording a bytecode profile gives each role its own file; otherwise nothing", () => {
    delete process.env.BUN_BYTECODE_ORDER_OUT;
    expect(profileRecording("qmgr")).toEqual({});
    process.env.BUN_BYTECODE_ORDER_OUT = "/tmp/profiles/p";
    expect(profileRecording("qmgr")).toEqual({ BUN_BYTECODE_ORDER_OUT: "/tmp/profiles/p.qmgr" });
    // import_environment still cannot ask for it
    const env = childEnvironment(config(`import_environment = ["BUN_BYTECODE_ORDER_OUT", "BUN_BYTECODE_ORDER_OUT=/x"]\n`), "/etc/postern");
    expect(env.BUN_BYTECODE_ORDER_OUT).toBeUndefined();
  });
});

describe("export_environment", () => {
  test("the local workers (this executable as root) never get a BUN_ variable, in either form", () => {
    process.env.BUN_OPTIONS = "--preload /tmp/evil.js";
    process.env.TZ = "UTC";
    const env = workerEnvironment(config(`export_environment = ["TZ", "BUN_OPTIONS", "BUN_BE_BUN=1", "MAIL_LOGTAG=x"]\n`));
    expect(env).toEqual({ PATH: "/usr/bin:/bin", ...ALLOCATOR_ENVIRONMENT, TZ: "UTC", MAIL_LOGTAG: "x" });
  });

  test("commands get every name the list gives, set or copied; unset names are left out", () => {
    process.env.PN_TEST_VAR = "copied";
    delete process.env.TZ;
    const env = addExported({ PATH: "/usr/bin:/bin" }, ["PN_TEST_VAR", "TZ", "BUN_X=1", "A=b=c"]);
    expect(env).toEqual({ PATH: "/usr/bin:/bin", PN_TEST_VAR: "copied", BUN_X: "1", A: "b=c" });
  });
});
