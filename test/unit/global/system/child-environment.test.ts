/**
 * The environments postern hands on (src/global/system/child-environment.ts):
 * a daemon's from import_environment, and export_environment's for the
 * commands delivery runs and for the local workers. A BUN_ variable never
 * reaches a postern process (it would set the runtime's options, as root for
 * the workers), in either form; commands get what the list names. postern's
 * own processes get the allocator's settings (ALLOCATOR_ENVIRONMENT), which
 * the lists may override, and their role's JSC options (jsc-environment.ts),
 * which they may not.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { Config } from "../../../../src/global/config/config.ts";
import { configSourceFromText } from "../../../../src/global/config/source.ts";
import { ALLOCATOR_ENVIRONMENT, addExported, childEnvironment, profileRecording, runtimeEnvironment } from "../../../../src/global/system/child-environment.ts";
import { JSC_ENVIRONMENT, jscEnvironment } from "../../../../src/global/system/jsc-environment.ts";
import { SERVICE_TABLE, type DaemonRole } from "../../../../src/global/system/service-table.ts";
import { workerEnvironment } from "../../../../src/local/agent.ts";

const saved = {
  BUN_OPTIONS: process.env.BUN_OPTIONS,
  TZ: process.env.TZ,
  PN_TEST_VAR: process.env.PN_TEST_VAR,
  BUN_JSC_useFTLJIT: process.env.BUN_JSC_useFTLJIT,
  BUN_BYTECODE_ORDER_OUT: process.env.BUN_BYTECODE_ORDER_OUT,
};
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
    // and it is what the master gives that daemon (and the local service its workers)
    expect(childEnvironment(config(""), "/etc/postern", "qmgr").BUN_BYTECODE_ORDER_OUT).toBe("/tmp/profiles/p.qmgr");
    expect(workerEnvironment(config("")).BUN_BYTECODE_ORDER_OUT).toBe("/tmp/profiles/p.local-worker");
    // import_environment still cannot ask for it
    const env = childEnvironment(config(`import_environment = ["BUN_BYTECODE_ORDER_OUT", "BUN_BYTECODE_ORDER_OUT=/x"]\n`), "/etc/postern");
    expect(env.BUN_BYTECODE_ORDER_OUT).toBeUndefined();
  });
});

describe("the JSC options per role (jsc-environment.ts)", () => {
  const roles = Object.keys(SERVICE_TABLE) as DaemonRole[];

  test("the roles on the relay path keep the DFG tier without FTL; the others run without the DFG; nobody warms up blocks", () => {
    // bench/README.md, issue 16 session 9: the relay's hot loops need the DFG, nothing needed the FTL
    for (const role of ["smtpd", "qmgr"] as const) {
      expect([role, jscEnvironment(role)]).toEqual([role, { BUN_JSC_useFTLJIT: "0", BUN_JSC_useWarmUpMarkedBlocks: "0" }]);
    }
    for (const role of ["master", "pickup", "showq", "local", "local-worker"] as const) {
      expect([role, jscEnvironment(role)]).toEqual([role, { BUN_JSC_useDFGJIT: "0", BUN_JSC_useWarmUpMarkedBlocks: "0" }]);
    }
    expect(Object.keys(JSC_ENVIRONMENT).sort()).toEqual([...roles].sort());
    // bun:ffi (inotify, locks) refuses to run without the JIT
    for (const role of roles) expect([role, jscEnvironment(role).BUN_JSC_useJIT]).toEqual([role, undefined]);
  });

  test("each daemon, the master and the local workers start with their role's options; the operator's lists cannot change them", () => {
    process.env.BUN_JSC_useFTLJIT = "1";
    const lists = `["BUN_JSC_useFTLJIT", "BUN_JSC_useDFGJIT=1", "BUN_JSC_useWarmUpMarkedBlocks=1", "BUN_JSC_useJIT=0"]`;
    for (const role of roles) {
      const env = role === "local-worker" ? workerEnvironment(config(`export_environment = ${lists}\n`)) : childEnvironment(config(`import_environment = ${lists}\n`), "/etc/postern", role);
      const jsc = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith("BUN_")));
      expect([role, jsc]).toEqual([role, { ...jscEnvironment(role) }]);
      expect([role, env]).toEqual([role, expect.objectContaining(runtimeEnvironment(role))]);
    }
    // a command (postsuper from postern start) gets the allocator's settings only
    expect(Object.keys(childEnvironment(config(""), "/etc/postern")).filter((k) => k.startsWith("BUN_"))).toEqual([]);
  });
});

describe("export_environment", () => {
  test("the local workers (this executable as root) never get a BUN_ variable, in either form", () => {
    process.env.BUN_OPTIONS = "--preload /tmp/evil.js";
    process.env.TZ = "UTC";
    const env = workerEnvironment(config(`export_environment = ["TZ", "BUN_OPTIONS", "BUN_BE_BUN=1", "MAIL_LOGTAG=x"]\n`));
    expect(env).toEqual({ PATH: "/usr/bin:/bin", ...ALLOCATOR_ENVIRONMENT, ...jscEnvironment("local-worker"), TZ: "UTC", MAIL_LOGTAG: "x" });
  });

  test("commands get every name the list gives, set or copied; unset names are left out", () => {
    process.env.PN_TEST_VAR = "copied";
    delete process.env.TZ;
    const env = addExported({ PATH: "/usr/bin:/bin" }, ["PN_TEST_VAR", "TZ", "BUN_X=1", "A=b=c"]);
    expect(env).toEqual({ PATH: "/usr/bin:/bin", PN_TEST_VAR: "copied", BUN_X: "1", A: "b=c" });
  });
});
