/**
 * The benchmarks' command lines: every option declared once, with its default and a line of
 * help; `--help` prints them and exits; an unknown option, a missing value or a number that
 * is not one is refused (exit 2) rather than ignored, so a typo never runs the wrong
 * benchmark for minutes.
 */
import { parseArgs } from 'node:util';

export type OptionSpec =
  | { readonly type: 'number'; readonly default?: number; readonly min?: number; readonly help: string }
  | { readonly type: 'string'; readonly default?: string; readonly help: string }
  | { readonly type: 'flag'; readonly help: string };

type ValueOf<O extends OptionSpec> = O extends { type: 'flag' }
  ? boolean
  : O extends { type: 'number'; default: number }
    ? number
    : O extends { type: 'number' }
      ? number | undefined
      : O extends { type: 'string'; default: string }
        ? string
        : string | undefined;

export type OptionValues<S extends Record<string, OptionSpec>> = { -readonly [K in keyof S]: ValueOf<S[K]> };

/** What parsing gave: the values, or what to print and the exit code (0 for --help). */
export type Parsed<S extends Record<string, OptionSpec>> =
  | { readonly values: OptionValues<S> }
  | { readonly exit: 0 | 2; readonly output: string };

/** The help text: the command, what it measures, and each option with its default. */
export function usage(command: string, about: string, spec: Record<string, OptionSpec>): string {
  const rows = Object.entries(spec).map(([name, o]) => {
    const flag = o.type === 'flag' ? `--${name}` : `--${name} ${o.type === 'number' ? 'N' : 'VALUE'}`;
    const fallback = o.type !== 'flag' && o.default !== undefined ? ` (default ${o.default})` : '';
    return `  ${flag.padEnd(24)} ${o.help}${fallback}`;
  });
  return [
    `usage: ${command} [options]`,
    '',
    about,
    '',
    'options:',
    ...rows,
    `  ${'--help'.padEnd(24)} this text`,
  ].join('\n');
}

/** Parses `argv` (the arguments after the script) against `spec`. */
export function parseOptions<S extends Record<string, OptionSpec>>(
  argv: readonly string[],
  command: string,
  about: string,
  spec: S,
): Parsed<S> {
  const fail = (message: string) =>
    ({ exit: 2, output: `${command}: ${message}\nRun it with --help for its options.` }) as const;
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: 'boolean' },
        ...Object.fromEntries(
          Object.entries(spec).map(([name, o]) => [
            name,
            { type: o.type === 'flag' ? 'boolean' : 'string' } as const,
          ]),
        ),
      },
    });
  } catch (error) {
    return fail((error as Error).message);
  }
  if (parsed.values.help) return { exit: 0, output: usage(command, about, spec) };
  const values: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(spec)) {
    const given = parsed.values[name];
    if (o.type === 'flag') values[name] = given === true;
    else if (o.type === 'string') values[name] = (given as string | undefined) ?? o.default;
    else if (given === undefined) values[name] = o.default;
    else {
      const n = Number(given);
      if ((given as string).trim() === '' || !Number.isFinite(n))
        return fail(`--${name} takes a number, not ${JSON.stringify(given)}.`);
      if (o.min !== undefined && n < o.min) return fail(`--${name} must be at least ${o.min}, not ${n}.`);
      values[name] = n;
    }
  }
  return { values: values as OptionValues<S> };
}

/**
 * Parses this process's arguments; on --help prints the help and exits 0, on a bad option
 * prints why and exits 2.
 */
export function benchOptions<S extends Record<string, OptionSpec>>(
  command: string,
  about: string,
  spec: S,
): OptionValues<S> {
  const parsed = parseOptions(process.argv.slice(2), command, about, spec);
  if ('values' in parsed) return parsed.values;
  (parsed.exit === 0 ? console.log : console.error)(parsed.output);
  process.exit(parsed.exit);
}
