/**
 * %XX escaping for one-line record values: '%', control characters and
 * space are escaped so a value is one token without spaces or line breaks;
 * everything else (UTF-8 included) is kept as is.
 */
export function escapeValue(value: string): string {
  return value.replace(/[%\x00-\x20\x7f]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0"));
}

export function unescapeValue(text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}
