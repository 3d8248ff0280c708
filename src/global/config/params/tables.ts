/** Lookup-table parameters: what postmap, postalias and newaliases build by default. */
import { p, type ParamDef } from "../param-def.ts";

export const tableParams = (): ParamDef[] => [
  p("default_database_type", "str", "hash", "Table type postmap, postalias and newaliases use for a file named without a type", ["postmap", "postalias", "newaliases"]),
];
