/**
 * The postern.toml that install writes: it parses, every parameter it shows
 * is known, the configuration validates, and so does each commented default
 * once uncommented (a shown default that postern check refused would teach
 * a wrong value).
 */
import { describe, expect, test } from "bun:test";
import { parse as parseToml } from "smol-toml";
import { configTemplate } from "../../../../src/cmd/install/config-template.ts";
import { Config } from "../../../../src/global/config/config.ts";
import { paramDef } from "../../../../src/global/config/registry.ts";
import { scanLayout } from "../../../../src/global/config/toml-layout.ts";

function configOf(text: string): Config {
  return new Config({ directory: "/etc/postern", path: "/etc/postern/postern.toml", exists: true, text, document: parseToml(text) as Record<string, unknown>, layout: scanLayout(text) });
}

describe("the postern.toml template", () => {
  test("sets nothing by default, shows known parameters with a one-line explanation each, and validates", () => {
    const text = configTemplate(new Map());
    const config = configOf(text);
    expect(config.validate()).toEqual([]);
    expect(parseToml(text)).toEqual({});
    const services = text.indexOf("# ---- Services");
    const shown = [...text.slice(0, services).matchAll(/^#([a-z_]+) = /gm)].map((m) => m[1]!);
    expect(shown.length).toBeGreaterThan(25);
    for (const name of shown) expect(`${name}: ${paramDef(name) ? "known" : "unknown"}`).toBe(`${name}: known`);
    // Postfix's compatibility-level expressions are shown as what they give, numbers as numbers
    expect(text).not.toContain("${{");
    expect(text).toContain('\n#mynetworks_style = "host"\n');
    expect(text).toContain("\n#message_size_limit = 10240000\n");
    // each setting line follows its explanation
    const lines = text.slice(0, services).split("\n");
    for (const [i, line] of lines.entries()) if (/^#[a-z_]+ = /.test(line)) expect(lines[i - 1]).toMatch(/^# \S/);
  });

  test("every commented default and service, uncommented, is a value postern check accepts", () => {
    const text = configTemplate(new Map());
    const uncommented = text
      .split("\n")
      .filter((l) => /^#([a-z_]+ = |\[services\.)/.test(l))
      .map((l) => l.slice(1))
      .join("\n");
    const config = configOf(uncommented);
    expect(config.validate().map((p) => p.message)).toEqual([]);
    expect(config.unknownNames()).toEqual([]);
  });

  test("given parameters are set where the template shows them, others at the end", () => {
    const text = configTemplate(new Map([["myhostname", 'mail."quoted".test'], ["queue_directory", "/opt/p/var/spool/postern"], ["biff", "no"]]));
    expect(parseToml(text)).toEqual({ myhostname: 'mail."quoted".test', queue_directory: "/opt/p/var/spool/postern", biff: "no" });
    expect(text).not.toContain("#myhostname = ");
    expect(text.indexOf("biff = ")).toBeGreaterThan(text.indexOf("# ---- Given to postern install"));
    expect(configOf(text).validate()).toEqual([]);
  });
});
