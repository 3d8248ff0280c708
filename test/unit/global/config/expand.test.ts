import { describe, expect, test } from "bun:test";
import { compareLevels, Expander, ExpansionError } from "../../../../src/global/config/expand.ts";

/** An Expander over a fixed table; records the undefined names it reports. */
function expander(values: Record<string, string>) {
  const undefinedNames: string[] = [];
  const ex = new Expander(
    (name) => (Object.hasOwn(values, name) ? values[name] : undefined),
    (name) => undefinedNames.push(name),
  );
  return { ex, undefinedNames };
}

const VALUES = {
  myhostname: "mail.example.com",
  mydomain: "example.com",
  myorigin: "$myhostname",
  empty: "",
  chain: "<$myorigin>",
  compatibility_level: "3.7",
  old_level: "1",
  ten: "10",
};

describe("Expander: references", () => {
  const { ex } = expander(VALUES);

  test("$name, ${name} and $(name)", () => {
    expect(ex.expand("$myhostname")).toBe("mail.example.com");
    expect(ex.expand("${myhostname}")).toBe("mail.example.com");
    expect(ex.expand("$(myhostname)")).toBe("mail.example.com");
  });

  test("a name ends at the first character that is not a letter, digit or '_'", () => {
    expect(ex.expand("localhost.$mydomain")).toBe("localhost.example.com");
    expect(ex.expand("$mydomain.")).toBe("example.com.");
    expect(ex.expand("x${mydomain}y")).toBe("xexample.comy");
  });

  test("values expand recursively", () => {
    expect(ex.expand("$chain")).toBe("<mail.example.com>");
    expect(ex.expandParam("chain")).toBe("<mail.example.com>");
  });

  test("$$ is a literal dollar and is not expanded further", () => {
    expect(ex.expand("$$myhostname")).toBe("$myhostname");
    expect(ex.expand("a$$$$b")).toBe("a$$b");
  });

  test("a '$' not followed by a name stays as it is", () => {
    expect(ex.expand("cost: 5$")).toBe("cost: 5$");
    expect(ex.expand("$-x")).toBe("$-x");
  });

  test("unknown names expand to the empty string and are reported", () => {
    const { ex, undefinedNames } = expander(VALUES);
    expect(ex.expand("a${nosuch}b$other_unknown.c")).toBe("ab.c");
    expect(undefinedNames).toEqual(["nosuch", "other_unknown"]);
    expect(ex.expandParam("nosuch")).toBeUndefined();
  });

  test("a defined but empty name is not reported as undefined", () => {
    const { ex, undefinedNames } = expander(VALUES);
    expect(ex.expand("[$empty]")).toBe("[]");
    expect(undefinedNames).toEqual([]);
  });

  test("an unclosed brace is an error", () => {
    expect(() => ex.expand("${myhostname")).toThrow(ExpansionError);
    expect(() => ex.expand("$(myhostname")).toThrow("missing ')'");
  });

  test("an invalid name inside braces is an error", () => {
    expect(() => ex.expand("${ myhostname }")).toThrow(ExpansionError);
  });
});

describe("Expander: conditionals", () => {
  const { ex } = expander(VALUES);

  test("${name?value}: value when name is non-empty, else nothing", () => {
    expect(ex.expand("${myhostname?yes}")).toBe("yes");
    expect(ex.expand("${empty?yes}")).toBe("");
    expect(ex.expand("${nosuch?yes}")).toBe("");
  });

  test("${name:value}: value when name is empty or undefined, else nothing", () => {
    expect(ex.expand("${myhostname:fallback}")).toBe("");
    expect(ex.expand("${empty:fallback}")).toBe("fallback");
    expect(ex.expand("${nosuch:fallback}")).toBe("fallback");
  });

  test("the value of a conditional is expanded", () => {
    expect(ex.expand("${myhostname?$mydomain}")).toBe("example.com");
    expect(ex.expand("${empty:${mydomain}}")).toBe("example.com");
  });

  test("${name?{x}:{y}} picks one of two braced values", () => {
    expect(ex.expand("${myhostname?{set}:{unset}}")).toBe("set");
    expect(ex.expand("${empty?{set}:{unset}}")).toBe("unset");
    expect(ex.expand("${empty?{set} : {unset}}")).toBe("unset");
  });

  test("braced single values: ${name?{x}} and ${name:{x}}", () => {
    expect(ex.expand("${myhostname?{a, b}}")).toBe("a, b");
    expect(ex.expand("${empty:{$mydomain}}")).toBe("example.com");
  });

  test("text after a braced value that is not ':{...}' is an error", () => {
    expect(() => ex.expand("${myhostname?{a}junk}")).toThrow(ExpansionError);
  });
});

describe("Expander: comparisons (Postfix 3.x)", () => {
  const { ex } = expander(VALUES);

  test("the compatibility_level idiom postern's defaults use", () => {
    expect(ex.expand("${{$compatibility_level} <level {2} ? {subnet} : {host}}")).toBe("host");
    const old = expander({ compatibility_level: "0" }).ex;
    expect(old.expand("${{$compatibility_level} <level {2} ? {subnet} : {host}}")).toBe("subnet");
  });

  test("== and != compare text", () => {
    expect(ex.expand("${{$mydomain} == {example.com} ? {same} : {different}}")).toBe("same");
    expect(ex.expand("${{$mydomain} == {example.org} ? {same} : {different}}")).toBe("different");
    expect(ex.expand("${{$mydomain} != {example.org} ? {differs}}")).toBe("differs");
    expect(ex.expand("${{$mydomain} != {example.com} ? {differs}}")).toBe("");
  });

  test("blanks around the operands do not matter", () => {
    expect(ex.expand("${{ $mydomain } == {example.com}?{t}:{f}}")).toBe("t");
    expect(ex.expand("${{$mydomain}=={example.com}?{t}:{f}}")).toBe("t");
  });

  test("number comparisons", () => {
    expect(ex.expand("${{$ten} <number {9} ? {lt} : {ge}}")).toBe("ge");
    expect(ex.expand("${{$ten} >number {9} ? {gt} : {le}}")).toBe("gt");
    expect(ex.expand("${{$ten} <=number {10} ? {le} : {gt}}")).toBe("le");
    expect(ex.expand("${{$ten} >=number {11} ? {ge} : {lt}}")).toBe("lt");
    expect(ex.expand("${{$ten} ==number {010} ? {eq} : {ne}}")).toBe("eq");
    expect(ex.expand("${{$ten} !=number {10} ? {ne} : {eq}}")).toBe("eq");
  });

  test("level comparisons go component by component", () => {
    expect(ex.expand("${{3.10} >level {3.9} ? {newer} : {older}}")).toBe("newer");
    expect(ex.expand("${{$old_level} <level {2} ? {old} : {new}}")).toBe("old");
    expect(ex.expand("${{3.6.1} >=level {3.6} ? {yes} : {no}}")).toBe("yes");
  });

  test("the chosen branch is expanded, the other is not", () => {
    expect(ex.expand("${{a} == {a} ? {$mydomain} : {$nosuch}}")).toBe("example.com");
  });

  test("malformed comparisons are errors", () => {
    expect(() => ex.expand("${{a} < {b} ? {x}}")).toThrow("needs \"number\" or \"level\"");
    expect(() => ex.expand("${{a} <number {2} ? {x}}")).toThrow("non-numeric");
    expect(() => ex.expand("${{a} ~ {b} ? {x}}")).toThrow("unknown operator");
    expect(() => ex.expand("${{a} == {b} {x}}")).toThrow("expected '?'");
    expect(() => ex.expand("${{x} <level {2} ? {a}}")).toThrow(ExpansionError);
  });
});

describe("Expander: recursion", () => {
  test("a loop is detected and the error names the chain", () => {
    const { ex } = expander({ a: "$b", b: "${c}", c: "x $a" });
    expect(() => ex.expandParam("a")).toThrow("recursive parameter expansion: $a -> $b -> $c -> $a");
  });

  test("a name referring to itself", () => {
    const { ex } = expander({ self: "[$self]" });
    expect(() => ex.expandParam("self")).toThrow("recursive parameter expansion: $self -> $self");
  });

  test("a loop through a lookup that expands other names (a computed default) names the whole chain", () => {
    // mydomain's default is computed from $myhostname while it is being looked up
    let ex!: Expander;
    const values: Record<string, string> = { myhostname: "$mydomain" };
    ex = new Expander((name) => (name === "mydomain" ? `computed-from-${ex.expandParam("myhostname")}` : values[name]));
    expect(() => ex.expandParam("mydomain")).toThrow("recursive parameter expansion: $mydomain -> $myhostname -> $mydomain");
  });

  test("the same name twice side by side is not recursion", () => {
    const { ex } = expander({ a: "x", b: "$a$a ${a}" });
    expect(ex.expandParam("b")).toBe("xx x");
  });

  test("the expander is usable again after a recursion error", () => {
    const { ex } = expander({ a: "$a", b: "ok" });
    expect(() => ex.expandParam("a")).toThrow(ExpansionError);
    expect(ex.expandParam("b")).toBe("ok");
  });
});

describe("compareLevels", () => {
  test("orders compatibility levels numerically, missing parts as 0", () => {
    expect(compareLevels("3.7", "3.7")).toBe(0);
    expect(compareLevels("3.7", "3.7.0")).toBe(0);
    expect(compareLevels("2", "3.6")).toBeLessThan(0);
    expect(compareLevels("3.10", "3.9")).toBeGreaterThan(0);
  });

  test("text that is not a level is an error", () => {
    expect(() => compareLevels("three", "2")).toThrow(ExpansionError);
  });
});
