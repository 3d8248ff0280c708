/**
 * String generators for the fuzz targets: text that leans on the characters
 * parsers treat specially (blanks, line ends, NUL, escapes, quotes, brackets,
 * Unicode spaces that `\s` matches but an ASCII check misses) mixed with any
 * Unicode code point. No lone surrogates: no input postern reads (bytes
 * decoded as UTF-8 or latin1) can hold one.
 *
 * Test code only.
 */
import fc from "fast-check";

/** Characters with a meaning to some parser, or a blank to some regular expression. */
export const AWKWARD = [" ", "\t", "\r", "\n", "\0", "%", "=", ",", ";", ":", "<", ">", "@", "\"", "\\", "(", ")", "[", "]", ".", "+", "!", "|", "\x7f", "\x1b", "\x0b", "\u00a0", "\u0085", "\u2028", "\ufeff", "\u3000", "é", "ü", "😀"];

const anyChar = fc.string({ unit: "binary", minLength: 1, maxLength: 1 });

/** Text of up to `maxLength` characters, about half of them awkward ones. */
export function awkwardText(maxLength = 40, minLength = 0): fc.Arbitrary<string> {
  return fc.string({ unit: fc.oneof(fc.constantFrom(...AWKWARD), anyChar, fc.constantFrom("a", "b", "x", "Z", "0", "9")), minLength, maxLength });
}

/** Text from a small alphabet, for inputs where the interesting cases are combinations of a few characters. */
export function textFrom(alphabet: readonly string[], maxLength: number, minLength = 0): fc.Arbitrary<string> {
  return fc.string({ unit: fc.constantFrom(...alphabet), minLength, maxLength });
}
