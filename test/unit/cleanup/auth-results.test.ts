/** Which Authentication-Results: headers claim to come from this host (RFC 8601 5). */
import { expect, test } from "bun:test";
import { authservId, claimsAuthservId } from "../../../src/cleanup/auth-results.ts";

test("the authserv-id is the first item, after comments and folding; a version or a quoted string is read too", () => {
  expect(authservId(" mx.example.com; spf=pass")).toBe("mx.example.com");
  expect(authservId(" (a (nested) comment)\n\t mx.example.com 1; none")).toBe("mx.example.com");
  expect(authservId(' "mx.example.com"; none')).toBe("mx.example.com");
  expect(authservId("mx.example.com;spf=pass")).toBe("mx.example.com");
  expect(authservId(" ; spf=pass")).toBeUndefined();
  expect(authservId("")).toBeUndefined();
});

test("only Authentication-Results: headers naming this host, in any case, are claimed", () => {
  const h = (text: string) => ({ name: text.slice(0, text.indexOf(":")), text });
  expect(claimsAuthservId(h("Authentication-Results: MX.Example.COM; dkim=pass"), "mx.example.com")).toBe(true);
  expect(claimsAuthservId(h("authentication-results:mx.example.com; none"), "mx.example.com")).toBe(true);
  expect(claimsAuthservId(h("Authentication-Results: mx.example.com.evil; dkim=pass"), "mx.example.com")).toBe(false);
  expect(claimsAuthservId(h("ARC-Authentication-Results: i=1; mx.example.com; dkim=pass"), "mx.example.com")).toBe(false);
  expect(claimsAuthservId(h("X-Authentication-Results: mx.example.com; dkim=pass"), "mx.example.com")).toBe(false);
});
