/**
 * postmap: build, query and change lookup tables, as Postfix's postmap(1).
 * `postmap [-bfFhinNoprsuUvw] [-c config_dir] [-d key] [-q key] [type:]file...`
 * A hash: table's index is FILE.sqlite (docs/tables.md).
 *
 * Runs as the invoking user (as root, builds take the source owner's ids);
 * standard input and source files are untrusted.
 */
import { parsePostmapSource } from "../../global/tables/postmap-format.ts";
import { runTableCommand, type SourceFormat } from "./table-command.ts";

export const POSTMAP_FORMAT: SourceFormat = {
  command: "postmap",
  optionSpec: "bc:d:fFhimnNopq:rsuUvw",
  usage: "usage: postmap [-bfFhimnNoprsuUvw] [-c config_dir] [-d key] [-q key] [map_type:]file...",
  parse: parsePostmapSource,
  formatLine: (key, value) => `${key}\t${value}`,
};

export async function main(args: string[]): Promise<number> {
  return await runTableCommand(POSTMAP_FORMAT, args);
}
