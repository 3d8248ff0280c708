/**
 * The rights a virtual delivery runs with: the virtual_uid_maps and
 * virtual_gid_maps results, as Postfix's virtual(8) reads them: a decimal
 * number, nothing else; a uid below virtual_minimum_uid is refused. postern
 * also refuses uid 0 whatever virtual_minimum_uid says: a virtual mailbox is
 * never written as root.
 *
 * Pure; runs in the virtual agent. Table results are untrusted.
 */

const MAX_ID = 0xfffffffe; // (uid_t)-1 is special to the kernel

function parseId(text: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= MAX_ID ? n : undefined;
}

/** The uid, or undefined when the result is not one virtual(8) accepts. */
export function virtualUid(result: string, minimumUid: number): number | undefined {
  const uid = parseId(result);
  if (uid === undefined || uid === 0 || uid < minimumUid) return undefined;
  return uid;
}

/** The gid, or undefined when the result is not a number. */
export function virtualGid(result: string): number | undefined {
  return parseId(result);
}
