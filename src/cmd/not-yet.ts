/**
 * Commands whose issue has not landed yet: they fail loudly with
 * EX_UNAVAILABLE instead of pretending to work (a sendmail that exits 0
 * without queueing would lose mail).
 */
import { ExitError, EX_UNAVAILABLE } from "../util/sysexits.ts";
import { VERSION } from "../version.ts";

export async function main(_args: string[], invokedAs: string): Promise<number> {
  throw new ExitError(EX_UNAVAILABLE, `${invokedAs} is not implemented yet in postern ${VERSION}`);
}
