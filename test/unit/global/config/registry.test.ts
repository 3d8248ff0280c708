import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { defaultsOnlyConfig } from "../../../../src/global/config/config.ts";
import type { ParamDef } from "../../../../src/global/config/param-def.ts";
import { paramDef, paramRegistry } from "../../../../src/global/config/registry.ts";
import { ROOT } from "../../../helpers/run.ts";

/** Every ParamDef exported by src/global/config/params/*.ts: arrays, and the functions (NAMEParams) that build them. */
async function allDefinitions(): Promise<ParamDef[]> {
  const dir = join(ROOT, "src/global/config/params");
  const defs: ParamDef[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".ts"))) {
    const mod = (await import(join(dir, file))) as Record<string, unknown>;
    for (const [key, value] of Object.entries(mod)) {
      if (Array.isArray(value)) defs.push(...(value as ParamDef[]));
      else if (typeof value === "function" && key.endsWith("Params")) defs.push(...(value as () => ParamDef[])());
    }
  }
  return defs;
}

describe("parameter registry", () => {
  test("no name is defined twice, and every definition file is in the registry", async () => {
    const defs = await allDefinitions();
    const names = defs.map((d) => d.name);
    const dupes = names.filter((n, i) => names.indexOf(n) !== i);
    expect(dupes).toEqual([]);
    expect([...paramRegistry().keys()].sort()).toEqual([...names].sort());
  });

  test("each definition is complete: a Postfix-style name, a type, a doc line, its roles", () => {
    for (const def of paramRegistry().values()) {
      expect(def.name).toMatch(/^[a-z0-9_]+$/i); // Postfix has a few with capitals: smtp_tls_CAfile
      expect(["str", "int", "bool", "time", "list"]).toContain(def.type);
      expect(def.doc.length).toBeGreaterThan(5);
      expect(def.doc).not.toContain("\n");
      expect(def.roles.length).toBeGreaterThan(0);
      if (def.type === "time") expect(["s", "m", "h", "d", "w"]).toContain(def.unit!);
      else expect(def.unit).toBeUndefined();
    }
  });

  test("the main.cf basics of issue 2 are all there", () => {
    const basics =
      "myhostname mydomain myorigin mydestination mynetworks mynetworks_style relay_domains relayhost inet_interfaces inet_protocols queue_directory data_directory mail_owner default_privs alias_maps alias_database home_mailbox mail_spool_directory mailbox_command recipient_delimiter message_size_limit syslog_name syslog_facility maillog_file compatibility_level config_directory".split(
        " ",
      );
    expect(basics.filter((n) => !paramDef(n))).toEqual([]);
  });

  for (const level of ["0", "1", "2", "3.6", "3.7"]) {
    test(`every default expands and every int/bool/time default validates (compatibility_level ${level})`, () => {
      const config = defaultsOnlyConfig().withOverrides({ compatibility_level: level });
      const bad: string[] = [];
      for (const def of paramRegistry().values()) {
        try {
          if (def.type === "int") config.int(def.name);
          else if (def.type === "bool") config.bool(def.name);
          else if (def.type === "time") config.time(def.name);
          else config.str(def.name);
        } catch (err) {
          bad.push(`${def.name}: ${(err as Error).message}`);
        }
      }
      expect(bad).toEqual([]);
      expect(config.validate()).toEqual([]);
    });
  }

  test("defaults that depend on the stress flag validate both ways", () => {
    const stressed = defaultsOnlyConfig().withOverrides({ stress: "yes" });
    expect(stressed.int("smtpd_hard_error_limit")).toBe(1);
    expect(stressed.time("smtpd_timeout")).toBe(10);
    expect(defaultsOnlyConfig().time("smtpd_timeout")).toBe(300);
  });

  test("syslog_name is postfix, so pflogsumm and fail2ban filters match postern's log", () => {
    expect(defaultsOnlyConfig().str("syslog_name")).toBe("postfix");
    expect(defaultsOnlyConfig().withOverrides({ multi_instance_name: "postfix-out" }).str("syslog_name")).toBe("postfix-out");
  });

  test("compatibility_level changes the defaults as in Postfix", () => {
    const now = defaultsOnlyConfig();
    const old = now.withOverrides({ compatibility_level: "0" });
    expect([now.str("mynetworks_style"), old.str("mynetworks_style")]).toEqual(["host", "subnet"]);
    expect([now.str("relay_domains"), old.str("relay_domains")]).toEqual(["", old.str("mydestination")]);
    expect([now.bool("append_dot_mydomain"), old.bool("append_dot_mydomain")]).toEqual([false, true]);
    expect([now.bool("smtputf8_enable"), old.bool("smtputf8_enable")]).toEqual([true, false]);
  });

  test("raw parameters are the ones local delivery expands itself", () => {
    const raw = [...paramRegistry().values()].filter((d) => d.raw).map((d) => d.name);
    expect(raw).toEqual(expect.arrayContaining(["forward_path", "luser_relay", "mailbox_command"]));
    expect(raw).not.toContain("myorigin");
  });
});

describe("the registry builds its files on first need (issue 16: sendmail's start)", () => {
  /** A fresh process: this file's other tests have built the whole registry already. */
  function inFreshProcess(code: string): unknown {
    const script = `import * as r from ${JSON.stringify(join(ROOT, "src/global/config/registry.ts"))};\n${code}`;
    const proc = Bun.spawnSync([process.execPath, "-e", script], { cwd: ROOT, env: { ...process.env, BUN_OPTIONS: undefined } });
    if (proc.exitCode !== 0) throw new Error(`bun -e failed (${proc.exitCode}): ${proc.stderr.toString()}`);
    return JSON.parse(proc.stdout.toString());
  }

  test("the parameters sendmail reads come from the first files only, and are the registry's own definitions", () => {
    const out = inFreshProcess(`
      const names = ["queue_directory", "message_size_limit", "smtputf8_enable", "authorized_submit_users", "sendmail_fix_line_endings", "verp_delimiter_filter"];
      const found = names.map((n) => r.paramDef(n));
      const before = r.paramFilesBuilt();
      const all = r.paramRegistry();
      console.log(JSON.stringify({ before, after: r.paramFilesBuilt(), same: found.every((d, i) => d !== undefined && all.get(names[i]) === d) }));`) as {
      before: { built: number; total: number };
      after: { built: number; total: number };
      same: boolean;
    };
    expect(out.before.built).toBeLessThanOrEqual(2);
    expect(out.before.total).toBeGreaterThan(10);
    expect(out.after.built).toBe(out.after.total);
    expect(out.same).toBe(true);
  });

  test("a name no file defines builds every file and is unknown; an SMTP client name is found", () => {
    const out = inFreshProcess(`
      const unknown = r.paramDef("no_such_parameter");
      console.log(JSON.stringify({ unknown: unknown === undefined, built: r.paramFilesBuilt(), smtp: r.paramDef("lmtp_lhlo_name")?.default }));`) as {
      unknown: boolean;
      built: { built: number; total: number };
      smtp: string;
    };
    expect(out.unknown).toBe(true);
    expect(out.built.built).toBe(out.built.total);
    expect(out.smtp).toBe("$myhostname");
  });
});
