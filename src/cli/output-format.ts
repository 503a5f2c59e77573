import { Option, type Command } from 'commander';
import { stringify } from 'yaml';
import { CubeError } from '../core/index.ts';
import { printJson, renderTable, type CliOutput } from './output.ts';

/**
 * The forms a listing or showing command prints in, as `kubectl -o` has them: `table` (the
 * default), `wide` (the table with more columns), `json`, `yaml` (the same value as `json`), and
 * `name` (one id or name a line, for shell pipelines).
 */
export const outputFormats = ['table', 'wide', 'json', 'yaml', 'name'] as const;
export type OutputFormat = (typeof outputFormats)[number];

/** Parses `-o`/`--output`; a value outside {@link outputFormats} is bad input naming them. */
export function parseOutputFormat(value: string): OutputFormat {
  const format = outputFormats.find((f) => f === value);
  if (format === undefined)
    throw new CubeError(
      'BAD_FLAG',
      `-o/--output must be one of ${outputFormats.join(', ')}, got "${value}"`,
      { where: { field: '--output', allowed: outputFormats } },
    );
  return format;
}

/** The flags {@link withOutputFlags} adds, as commander hands them to the action. */
export interface OutputFlags {
  output?: OutputFormat;
  json?: boolean;
}

/** Adds `-o, --output <format>` and `--json` (an alias of `-o json`) to `command`. */
export function withOutputFlags(command: Command, jsonWhat = 'print as JSON'): Command {
  return command
    .addOption(
      new Option('-o, --output <format>', `output format: ${outputFormats.join(', ')}`).argParser(
        parseOutputFormat,
      ),
    )
    .option('--json', `${jsonWhat} (the same as -o json)`);
}

/**
 * The format the flags ask for. `--json` is `-o json`; together with another `-o` they
 * contradict each other, which is bad input rather than a silent choice.
 */
export function outputFormatOf(flags: OutputFlags): OutputFormat {
  if (flags.json === true) {
    if (flags.output !== undefined && flags.output !== 'json')
      throw new CubeError('BAD_FLAG', `--json and -o ${flags.output} ask for different outputs`, {
        where: { field: '--output' },
        hint: 'give one of them',
      });
    return 'json';
  }
  return flags.output ?? 'table';
}

/** True when the format is for machines (no status lines, no progress on stderr). */
export function isMachineFormat(format: OutputFormat): boolean {
  return format === 'json' || format === 'yaml' || format === 'name';
}

/** How a list of items is drawn in each format. */
export interface Listing<T> {
  readonly headers: readonly string[];
  readonly row: (item: T) => readonly (string | number | null)[];
  /** Columns `wide` adds after the table's. */
  readonly wideHeaders: readonly string[];
  readonly wideRow: (item: T) => readonly (string | number | null)[];
  /** What `-o name` prints for an item: its id, or the name commands accept. */
  readonly name: (item: T) => string;
}

/** `value` as the machine formats print it: pretty JSON or YAML. */
export function serialize(format: 'json' | 'yaml', value: unknown): string {
  return format === 'json'
    ? JSON.stringify(value, null, 2)
    : stringify(value, { lineWidth: 0 }).trimEnd();
}

/**
 * Renders `items` in `format`; `value` is what `json` and `yaml` print (by default the items
 * themselves, so `--json` keeps printing what it printed before `-o` existed).
 */
export function renderListing<T>(
  format: OutputFormat,
  items: readonly T[],
  listing: Listing<T>,
  value: unknown = items,
): string {
  switch (format) {
    case 'json':
    case 'yaml':
      return serialize(format, value);
    case 'name':
      return items.map(listing.name).join('\n');
    case 'table':
      return renderTable(listing.headers, items.map(listing.row));
    case 'wide':
      return renderTable(
        [...listing.headers, ...listing.wideHeaders],
        items.map((i) => [...listing.row(i), ...listing.wideRow(i)]),
      );
    default:
      return format satisfies never;
  }
}

/**
 * Prints one object (`jobs show`): `json`/`yaml` serialize `value`, `name` prints `name`,
 * `table` and `wide` print the human text `text(wide)` draws.
 */
export function printShown(
  output: CliOutput,
  format: OutputFormat,
  shown: { value: unknown; name: string; text: (wide: boolean) => string },
): void {
  if (format === 'json') printJson(output, shown.value);
  else if (format === 'yaml') output.out(serialize('yaml', shown.value));
  else if (format === 'name') output.out(shown.name);
  else output.out(shown.text(format === 'wide'));
}

/** Prints `text` unless it is empty (an empty `-o name` listing prints nothing, not a blank line). */
export function printUnlessEmpty(output: CliOutput, text: string): void {
  if (text !== '') output.out(text);
}
