/**
 * postalias: build, query and change alias databases, as Postfix's
 * postalias(1): the aliases(5) format (`name: value, value`), values stored
 * as Postfix stores them, `key:<TAB>value` output, and the "@" entry
 * Sendmail-style readers look for. `postalias [-finNoprsuvw] [-c config_dir]
 * [-d key] [-q key] [type:]file...`
 *
 * Runs as the invoking user (as root, builds take the source owner's ids);
 * standard input and source files are untrusted.
 */
import { parseAliasSource } from "../../global/tables/alias-format.ts";
import { runTableCommand, type SourceFormat } from "../postmap/table-command.ts";

export const POSTALIAS_FORMAT: SourceFormat = {
  command: "postalias",
  optionSpec: "c:d:finNopq:rsuvw",
  usage: "usage: postalias [-Nfinoprsuvw] [-c config_dir] [-d key] [-q key] [map_type:]file...",
  parse: parseAliasSource,
  formatLine: (key, value) => `${key}:\t${value}`,
  sentinel: ["@", "@"],
};

export async function main(args: string[]): Promise<number> {
  return await runTableCommand(POSTALIAS_FORMAT, args);
}
