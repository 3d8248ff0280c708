/**
 * The table types postern implements, apart from the code that opens them,
 * so that `postern check` can name a type it lacks without loading every
 * backend. Data only.
 */

/** Types whose tables postmap/postalias build into a SOURCE.sqlite index. */
export const INDEXED_TYPES = new Set(["hash", "btree", "lmdb", "cdb", "dbm", "sdbm"]);

export const TABLE_TYPES = [...INDEXED_TYPES, "texthash", "inline", "static", "regexp", "pcre", "cidr", "unix", "sqlite", "fail", "mysql", "pgsql", "socketmap", "tcp", "ldap"];

/** Postfix's table types (dict_open.c and the dynamic maps), for telling a table from other `word:` values. */
export const POSTFIX_TABLE_TYPES = new Set([
  ...TABLE_TYPES,
  "environ", "internal", "ldap", "memcache", "mongodb", "mysql", "netinfo", "nis", "nisplus", "pgsql", "pipemap", "randmap", "socketmap", "tcp", "unionmap",
]);
