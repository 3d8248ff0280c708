/**
 * Sender-specified routing addresses of any depth, for the tests of the one
 * address resolver (issue 9, item 1): an address for `target` wrapped in
 * `hops` layers of a local domain with `%`, `!`, `@` or a mix of them, in
 * internal (unquoted) form, as smtpd and the queue file hold addresses.
 *
 * wrap() adds one layer the way the resolver takes it off again: `L%D@here`
 * and `D!L@here` need a local part without "@" (else the last "@" is found
 * first), `L@D@here` always works; so "mixed" alternates `%` and `!` and
 * ends with `@` layers.
 */

export type RoutingOperator = "%" | "!" | "@";
export type RoutingForm = RoutingOperator | "mixed";

/** The hop counts the issue asks for: around smtpd's old limit (10), past the old queue manager's (100). */
export const HOP_COUNTS = [1, 9, 10, 11, 50, 101] as const;

export const ROUTING_FORMS: readonly RoutingForm[] = ["%", "!", "@", "mixed"];

function split(address: string): [string, string] {
  const at = address.lastIndexOf("@");
  return [address.slice(0, at), address.slice(at + 1)];
}

/** One more layer of `local` around `address` (user@domain) with `op`. */
export function wrap(address: string, op: RoutingOperator, local: string): string {
  const [l, d] = split(address);
  if (op !== "@" && l.includes("@")) throw new Error(`cannot wrap ${address} with ${op}`);
  if (op === "%") return `${l}%${d}@${local}`;
  if (op === "!") return `${d}!${l}@${local}`;
  return `${l}@${d}@${local}`;
}

/** `target` (user@domain) behind `hops` layers of `local`. */
export function routed(target: string, hops: number, form: RoutingForm, local: string): string {
  let a = target;
  const atLayers = form === "mixed" ? Math.floor(hops / 3) : 0;
  for (let i = 0; i < hops; i++) {
    let op: RoutingOperator;
    if (form !== "mixed") op = form;
    else op = i >= hops - atLayers ? "@" : i % 2 === 0 ? "%" : "!";
    a = wrap(a, op, local);
  }
  return a;
}

/** The exploit of issue 9: `root+x@victim.example` behind `hops` layers of `local`. */
export function exploit(hops: number, form: RoutingForm, local: string): string {
  return routed("root+x@victim.example", hops, form, local);
}
