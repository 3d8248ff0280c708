/**
 * virtual(8)'s path and rights decisions: a virtual_mailbox_maps result is
 * relative to virtual_mailbox_base, ends in "/" for a Maildir, and may not
 * leave the base; a virtual_uid_maps result is a decimal uid at or above
 * virtual_minimum_uid and never 0.
 */
import { describe, expect, test } from "bun:test";
import { virtualMailboxPath } from "../../../src/virtual/mailbox-path.ts";
import { virtualGid, virtualUid } from "../../../src/virtual/owner.ts";

describe("virtualMailboxPath", () => {
  test("a result ending in / is a Maildir, anything else an mbox file, both below the base", () => {
    expect(virtualMailboxPath("/var/mail/vhosts", "example.net/alice/")).toEqual({ ok: true, kind: "maildir", path: "/var/mail/vhosts/example.net/alice/" });
    expect(virtualMailboxPath("/var/mail/vhosts", "example.net/bob")).toEqual({ ok: true, kind: "mbox", path: "/var/mail/vhosts/example.net/bob" });
  });

  test("an absolute result is still relative to the base, as Postfix joins base and result with /", () => {
    expect(virtualMailboxPath("/var/mail/vhosts", "/etc/passwd")).toEqual({ ok: true, kind: "mbox", path: "/var/mail/vhosts/etc/passwd" });
    expect(virtualMailboxPath("/var/mail/vhosts/", "a//./b/")).toEqual({ ok: true, kind: "maildir", path: "/var/mail/vhosts/a/b/" });
  });

  test("a .. component anywhere, an empty result, the base itself and control characters are refused", () => {
    for (const bad of ["../etc/passwd", "example.net/../../root/", "a/..", "..", "", "/", "./", "a\nb", "a\0b"]) {
      expect(virtualMailboxPath("/var/mail/vhosts", bad).ok).toBe(false);
    }
    expect(virtualMailboxPath("relative", "a").ok).toBe(false);
  });

  test("names that merely contain dots are mailboxes", () => {
    expect(virtualMailboxPath("/v", "example.net/a..b/")).toEqual({ ok: true, kind: "maildir", path: "/v/example.net/a..b/" });
    expect(virtualMailboxPath("/v", ".hidden")).toEqual({ ok: true, kind: "mbox", path: "/v/.hidden" });
  });
});

describe("virtualUid / virtualGid", () => {
  test("a decimal uid at or above virtual_minimum_uid is taken", () => {
    expect(virtualUid("5000", 100)).toBe(5000);
    expect(virtualUid("100", 100)).toBe(100);
  });

  test("below virtual_minimum_uid, root, and anything but digits are refused", () => {
    expect(virtualUid("99", 100)).toBeUndefined();
    expect(virtualUid("0", 0)).toBeUndefined();
    for (const bad of ["", " 5000", "5000 ", "-1", "0x1388", "5e3", "4294967295", "99999999999", "vmail"]) expect(virtualUid(bad, 0)).toBeUndefined();
  });

  test("a gid is any decimal number but (gid_t)-1", () => {
    expect(virtualGid("5000")).toBe(5000);
    expect(virtualGid("0")).toBe(0);
    expect(virtualGid("4294967295")).toBeUndefined();
    expect(virtualGid("wheel")).toBeUndefined();
  });
});
