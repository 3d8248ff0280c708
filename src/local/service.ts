/** Placeholder while this role is being written. */
import { ExitError, EX_UNAVAILABLE } from "../util/sysexits.ts";
export async function main(): Promise<number> {
  throw new ExitError(EX_UNAVAILABLE, "this role is not implemented yet");
}
