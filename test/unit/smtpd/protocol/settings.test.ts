import { afterAll, describe, expect, test } from "bun:test";
import { sessionSettings } from "../../../../src/smtpd/protocol/settings.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";
import { configMaker } from "../../../helpers/config.ts";

const root = tempDir("postern-smtpd-settings-");
afterAll(() => removeDir(root));
const configFrom = configMaker(root);

describe("stress-dependent defaults, as Postfix's", () => {
  test("normally: smtpd_timeout 300s, no per-request deadline, 20 errors, 100 junk commands", () => {
    const s = sessionSettings(configFrom(""));
    expect(s).toMatchObject({ timeoutMs: 300_000, starttlsTimeoutMs: 300_000, requestDeadline: false, minDataRate: 500, hardErrorLimit: 20, junkCommandLimit: 100 });
  });

  test("under stress (stress=yes, set by smtpd when a process reaches its session cap): 10s, deadline, 1 error, 1 junk command", () => {
    const s = sessionSettings(configFrom("").withOverrides({ stress: "yes" }));
    expect(s).toMatchObject({ timeoutMs: 10_000, starttlsTimeoutMs: 10_000, requestDeadline: true, minDataRate: 500, hardErrorLimit: 1, junkCommandLimit: 1 });
  });

  test("smtpd_per_record_deadline, the old name, still decides the deadline when set", () => {
    expect(sessionSettings(configFrom('smtpd_per_record_deadline = "yes"')).requestDeadline).toBe(true);
  });

  test("smtpd_min_data_rate must be at least 1", () => {
    expect(() => sessionSettings(configFrom("smtpd_min_data_rate = 0"))).toThrow('smtpd_min_data_rate: invalid value "0"');
  });
});
