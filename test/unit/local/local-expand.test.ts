import { expect, test } from "bun:test";
import { localExpand } from "../../../src/local/local-expand.ts";

const FILTER = "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const values = { user: "alice", home: "/home/alice", extension: "lists", recipient_delimiter: "+", local: "alice+lists", domain: "example.test" };

test("forward_path default with an extension", () => {
  const r = localExpand("$home/.forward${recipient_delimiter}${extension}", values, FILTER);
  expect(r).toEqual({ text: "/home/alice/.forward+lists", undefinedName: false, extensionUsed: true });
});

test("an undefined name marks the entry unusable", () => {
  const r = localExpand("$home/.forward${recipient_delimiter}${extension}", { user: "alice", home: "/home/alice" }, FILTER);
  expect(r.undefinedName).toBe(true);
  expect(r.extensionUsed).toBe(false);
});

test("conditional forms do not count as undefined", () => {
  expect(localExpand("${extension?+$extension}${extension:none}", { user: "a" }).text).toBe("none");
  expect(localExpand("${extension?{x-$extension}:{plain}}", { extension: "e" }).text).toBe("x-e");
  expect(localExpand("${extension?{x}:{plain}}", {}).undefinedName).toBe(false);
});

test("characters outside the filter become underscores, and values are not expanded again", () => {
  expect(localExpand("$home/x", { home: "/home/a b;$(rm)" }, FILTER).text).toBe("/home/a_b___rm_/x");
  expect(localExpand("$$user $(user)", { user: "$home" }).text).toBe("$user $home");
});

test("a malformed pattern is reported", () => {
  expect(localExpand("${home", { home: "/h" }).error).toBeDefined();
});
