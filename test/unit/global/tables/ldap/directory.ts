/**
 * The directory the ldap: table tests load into their slapd: people with
 * mail addresses, a static group (member DNs), a dynamic group (a memberURL),
 * a group with a terminal attribute, a reader account for binds, and an
 * entry whose address holds filter metacharacters.
 */
import { SUFFIX } from "../../../../helpers/slapd.ts";

export const PEOPLE = `ou=people,${SUFFIX}`;
export const GROUPS = `ou=groups,${SUFFIX}`;
export const READER_DN = `cn=postern,${SUFFIX}`;
export const READER_PW = "reader-secret";
/** A real address with every filter metacharacter in it. */
export const ODD_ADDRESS = "we*ird(x)\\y@example.com";

function person(uid: string, extra: string[] = []): string {
  return [
    `dn: uid=${uid},${PEOPLE}`,
    "objectClass: inetOrgPerson",
    "objectClass: inetLocalMailRecipient",
    `uid: ${uid}`,
    `cn: ${uid}`,
    `sn: ${uid}`,
    `mail: ${uid}@example.com`,
    `mailLocalAddress: ${uid}@example.com`,
    `mailRoutingAddress: ${uid}@mail.example.com`,
    ...extra,
    "",
    "",
  ].join("\n");
}

export const DIRECTORY = [
  `dn: ${PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n`,
  `dn: ${GROUPS}\nobjectClass: organizationalUnit\nou: groups\n\n`,
  `dn: ${READER_DN}\nobjectClass: person\nobjectClass: simpleSecurityObject\ncn: postern\nsn: postern\nuserPassword: ${READER_PW}\n\n`,
  person("alice", ["mailLocalAddress: info@example.com", "mailLocalAddress: Alice.Smith@Example.COM"]),
  person("bob"),
  person("carol"),
  // a value in Base64 (LDIF's "::") because of the backslash
  person("odd", [`mailLocalAddress:: ${Buffer.from(ODD_ADDRESS).toString("base64")}`]),
  [
    `dn: cn=staff,${GROUPS}`,
    "objectClass: groupOfNames",
    "objectClass: inetLocalMailRecipient",
    "cn: staff",
    `member: uid=alice,${PEOPLE}`,
    `member: uid=bob,${PEOPLE}`,
    `member: uid=nobody,${PEOPLE}`,
    "mailLocalAddress: staff@example.com",
    "mailRoutingAddress: staff-list@mail.example.com",
    "",
    "",
  ].join("\n"),
  [
    `dn: cn=dyn,${GROUPS}`,
    "objectClass: groupOfURLs",
    "objectClass: inetLocalMailRecipient",
    "cn: dyn",
    `memberURL: ldap:///${PEOPLE}??one?(uid=carol)`,
    "mailLocalAddress: dyn@example.com",
    "",
    "",
  ].join("\n"),
  [
    `dn: cn=sales,${GROUPS}`,
    "objectClass: groupOfNames",
    "objectClass: inetLocalMailRecipient",
    "cn: sales",
    `member: uid=alice,${PEOPLE}`,
    "mailLocalAddress: sales@example.com",
    "mailHost: sales-host.example.com",
    "",
    "",
  ].join("\n"),
].join("");
