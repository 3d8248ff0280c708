/**
 * Configuration generations (src/global/config/generation.ts) and the tables openTable() opens for
 * them: a retired configuration's tables close once no work holds it, never under a holder, and
 * never while another live configuration opened them too. Texthash files in a temporary directory.
 */
import { describe, expect, test } from "bun:test";
import { defaultsOnlyConfig } from "../../../../src/global/config/config.ts";
import { holdConfig, onConfigReleased, retireConfig } from "../../../../src/global/config/generation.ts";
import { keepTable, openTable } from "../../../../src/global/tables/open-table.ts";
import { tableFiles } from "../../../helpers/table-files.ts";

const { table, closed } = tableFiles("postern-generation-");

describe("configuration generations", () => {
  test("a retired configuration nobody holds releases at once; a held one when its last holder ends", () => {
    const released: string[] = [];
    const a = defaultsOnlyConfig();
    onConfigReleased(a, () => released.push("a"));
    retireConfig(a);
    expect(released).toEqual(["a"]);

    const b = defaultsOnlyConfig();
    onConfigReleased(b, () => released.push("b"));
    const first = holdConfig(b);
    const second = holdConfig(b.withOverrides({ stress: "yes" }));
    retireConfig(b);
    first();
    first();
    expect(released).toEqual(["a"]);
    second();
    expect(released).toEqual(["a", "b"]);
  });

  test("a configuration that is not retired keeps its resources", () => {
    let released = false;
    const c = defaultsOnlyConfig();
    onConfigReleased(c, () => (released = true));
    holdConfig(c)();
    expect(released).toBe(false);
  });
});

describe("tables of a configuration", () => {
  test("close when it is retired and unused, not before", async () => {
    const spec = table();
    const old = defaultsOnlyConfig();
    const t = openTable(spec, old);
    const session = holdConfig(old);
    retireConfig(old);
    expect(await t.lookup("a")).toBe("b");
    session();
    expect(await closed(t)).toBe(true);
    expect(openTable(spec, defaultsOnlyConfig())).not.toBe(t);
  });

  test("stay open while a live configuration opened them too", async () => {
    const spec = table();
    const old = defaultsOnlyConfig();
    const next = defaultsOnlyConfig();
    const t = openTable(spec, old);
    expect(openTable(spec, next)).toBe(t);
    retireConfig(old);
    expect(await t.lookup("a")).toBe("b");
    retireConfig(next);
    expect(await closed(t)).toBe(true);
  });

  test("a service's view of the configuration holds for the whole configuration", async () => {
    const spec = table();
    const base = defaultsOnlyConfig();
    const t = openTable(spec, base.withOverrides({ smtpd_banner: "x" }));
    const session = holdConfig(base.withOverrides({ stress: "yes" }));
    retireConfig(base);
    expect(await t.lookup("a")).toBe("b");
    session();
    expect(await closed(t)).toBe(true);
  });

  test("kept tables and tables opened without a configuration stay open", async () => {
    const kept = table();
    const bare = table();
    const old = defaultsOnlyConfig();
    const k = keepTable(openTable(kept, old));
    openTable(bare, old);
    const b = openTable(bare);
    retireConfig(old);
    expect(await k.lookup("a")).toBe("b");
    expect(await b.lookup("a")).toBe("b");
  });

  test("work that starts again with a released configuration opens tables that close when it ends", async () => {
    const spec = table();
    const old = defaultsOnlyConfig();
    retireConfig(old);
    const work = holdConfig(old);
    const t = openTable(spec, old);
    expect(await t.lookup("a")).toBe("b");
    work();
    expect(await closed(t)).toBe(true);
  });
});
