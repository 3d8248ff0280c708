/**
 * POSIX getopt(3), as the Postfix commands use it: options are single
 * letters, may be bundled (`-ti`), an option's argument may be glued
 * (`-fuser@x`) or the next word (`-f user@x`, `-f ''`), `--` ends the options,
 * and the first non-option word ends them too (no GNU permutation).
 *
 * Input is the argument vector; nothing here trusts it beyond its shape.
 */
export interface GetoptResult {
  /** Options in the order given: [letter, argument or undefined]. */
  options: Array<[string, string | undefined]>;
  /** The words after the options. */
  operands: string[];
}

export class GetoptError extends Error {
  constructor(
    message: string,
    readonly option: string,
  ) {
    super(message);
  }
}

/**
 * `spec` is getopt's option string: a letter followed by ":" takes an
 * argument. Unknown letters and missing arguments throw GetoptError with
 * getopt's wording.
 */
export function getopt(args: readonly string[], spec: string): GetoptResult {
  const takesArg = new Map<string, boolean>();
  for (let i = 0; i < spec.length; i++) {
    const c = spec[i]!;
    if (c === ":") continue;
    takesArg.set(c, spec[i + 1] === ":");
  }
  const options: Array<[string, string | undefined]> = [];
  let i = 0;
  for (; i < args.length; i++) {
    const word = args[i]!;
    if (word === "--") {
      i++;
      break;
    }
    if (word.length < 2 || word[0] !== "-") break;
    for (let j = 1; j < word.length; j++) {
      const letter = word[j]!;
      const wants = takesArg.get(letter);
      if (wants === undefined) throw new GetoptError(`invalid option -- '${letter}'`, letter);
      if (!wants) {
        options.push([letter, undefined]);
        continue;
      }
      if (j + 1 < word.length) {
        options.push([letter, word.slice(j + 1)]);
      } else if (i + 1 < args.length) {
        options.push([letter, args[++i]!]);
      } else {
        throw new GetoptError(`option requires an argument -- '${letter}'`, letter);
      }
      break;
    }
  }
  return { options, operands: args.slice(i) };
}
