/**
 * %XX escaping for one-line record values: '%', control characters and
 * space are escaped so a value is one token without spaces or line breaks;
 * a lone UTF-16 surrogate (how dsn-params.ts keeps an ORCPT octet that is
 * not UTF-8, U+DC80..U+DCFF) as %uXXXX, since it has no UTF-8 form;
 * everything else (UTF-8 included) is kept as is. "%u" never came out of
 * an older escapeValue ("%" is always "%25"), so older files read the same.
 */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const ANY_SURROGATE = /[\ud800-\udfff]/;

export function escapeValue(value: string): string {
  const escaped = value.replace(/[%\x00-\x20\x7f]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0"));
  if (!ANY_SURROGATE.test(escaped)) return escaped;
  return escaped.replace(LONE_SURROGATE, (c) => "%u" + c.charCodeAt(0).toString(16).toUpperCase());
}

export function unescapeValue(text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})|%u([Dd][89A-Fa-f][0-9A-Fa-f]{2})/g, (_, h: string | undefined, u: string | undefined) =>
    String.fromCharCode(parseInt(h ?? u!, 16)),
  );
}
