/**
 * The environments postern hands on (src/global/system/child-environment.ts):
 * a daemon's from import_environment, and export_environment's for the
 * commands delivery runs and for the local workers. A BUN_ variable never
 * reaches a postern process (it would set the runtime's options, as root for
 * the workers), in either form; commands get what the list names.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { Config } from "../../../../src/global/config/config.ts";
import { configSourceFromText } from "../../../../src/global/config/source.ts";
import { addExported, childEnvironment } from "../../../../src/global/system/child-environment.ts";
import { workerEnvironment } from "../../../../src/local/agent.ts";

const saved = { BUN_OPTIONS: process.env.BUN_OPTIONS, TZ: process.env.TZ, PN_TEST_VAR: process.env.PN_TEST_VAR };
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
    expect(env).toEqual({ PATH: "/usr/bin:/bin:/usr/sbin:/sbin", PN_TEST_VAR: "copied", LANG: "C", MAIL_CONFIG: "/etc/postern" });
  });
});

describe("export_environment", () => {
  test("the local workers (this executable as root) never get a BUN_ variable, in either form", () => {
    process.env.BUN_OPTIONS = "--preload /tmp/evil.js";
    process.env.TZ = "UTC";
    const env = workerEnvironment(config(`export_environment = ["TZ", "BUN_OPTIONS", "BUN_BE_BUN=1", "MAIL_LOGTAG=x"]\n`));
    expect(env).toEqual({ PATH: "/usr/bin:/bin", TZ: "UTC", MAIL_LOGTAG: "x" });
  });

  test("commands get every name the list gives, set or copied; unset names are left out", () => {
    process.env.PN_TEST_VAR = "copied";
    delete process.env.TZ;
    const env = addExported({ PATH: "/usr/bin:/bin" }, ["PN_TEST_VAR", "TZ", "BUN_X=1", "A=b=c"]);
    expect(env).toEqual({ PATH: "/usr/bin:/bin", PN_TEST_VAR: "copied", BUN_X: "1", A: "b=c" });
  });
});
