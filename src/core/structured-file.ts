import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import type { z } from 'zod';
import { CubeError } from './cube-error.ts';

// yaml is loaded on first use, not with core: most `cube` commands never parse YAML, and
// loading it added ~40 ms of CPU to every call (bench/cli).
const load = createRequire(import.meta.url);
let yaml: typeof Yaml | null = null;

/** Formats a Zod issue path as `servers[2].accelerator`. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

/**
 * Turns a failed Zod parse into an INVALID_FILE (or INVALID_VALUE) CubeError whose message
 * lists every problem with its path, and whose `where` points at the first one.
 */
export function schemaError(
  error: z.ZodError,
  options: { file?: string; what?: string; code?: 'INVALID_FILE' | 'INVALID_VALUE' } = {},
): CubeError {
  const issues = error.issues.map((issue) => {
    const path = formatIssuePath(issue.path);
    return { path, text: `${path === '' ? '(top level)' : path}: ${issue.message}`, issue };
  });
  const first = issues[0];
  const allowed =
    first !== undefined && 'values' in first.issue && Array.isArray(first.issue.values)
      ? first.issue.values.map(String)
      : undefined;
  const what = options.what ?? (options.file === undefined ? 'input' : options.file);
  return new CubeError(
    options.code ?? 'INVALID_FILE',
    `${what} is invalid:\n${issues.map((i) => `  - ${i.text}`).join('\n')}`,
    {
      where: {
        ...(options.file === undefined ? {} : { file: options.file }),
        ...(first === undefined ? {} : { path: first.path }),
        ...(allowed === undefined ? {} : { allowed }),
      },
      cause: error,
    },
  );
}

/** Parses YAML or JSON text (chosen by the file's extension; YAML otherwise, a superset). */
export function parseStructuredText(text: string, file: string): unknown {
  if (extname(file).toLowerCase() === '.json') {
    try {
      return JSON.parse(text) as unknown;
    } catch (cause) {
      throw new CubeError(
        'FILE_UNREADABLE',
        `${file} is not valid JSON: ${(cause as Error).message}`,
        {
          where: { file },
          cause,
        },
      );
    }
  }
  return parseYamlText(text, { label: file, file });
}

/**
 * The most alias expansions a YAML document may make. A "billion laughs" document nests
 * aliases so that a few hundred bytes expand to gigabytes; the `yaml` package refuses one
 * that expands more than this, and the refusal is reported as bad input, never a crash.
 */
export const maxYamlAliasCount = 100;

/**
 * Parses YAML text into a plain value. Syntax errors fail with FILE_UNREADABLE naming the line;
 * a document whose aliases expand more than {@link maxYamlAliasCount} times fails with
 * INVALID_FILE. `label` names the input in messages (a file, or "the job spec").
 */
export function parseYamlText(text: string, options: { label: string; file?: string }): unknown {
  const { label } = options;
  const fileWhere = options.file === undefined ? {} : { file: options.file };
  // logLevel 'error': a hostile document's warnings (complex keys, ...) are not printed.
  yaml ??= load('yaml') as typeof Yaml;
  const doc = yaml.parseDocument(text, { prettyErrors: true, logLevel: 'error' });
  const firstError = doc.errors[0];
  if (firstError !== undefined) {
    const pos = firstError.linePos?.[0];
    throw new CubeError(
      'FILE_UNREADABLE',
      `${label} is not valid YAML${pos === undefined ? '' : ` (line ${pos.line}, column ${pos.col})`}: ${firstError.message.split('\n')[0]}`,
      {
        where: { ...fileWhere, ...(pos === undefined ? {} : { path: `line ${pos.line}` }) },
        cause: firstError,
      },
    );
  }
  try {
    return doc.toJS({ maxAliasCount: maxYamlAliasCount }) as unknown;
  } catch (cause) {
    // The yaml package throws a ReferenceError for too many aliases (and plain errors for a
    // few other unbuildable documents): both are bad input, not a bug of Cube.
    const aliases = /alias/i.test((cause as Error).message);
    throw new CubeError(
      aliases ? 'INVALID_FILE' : 'FILE_UNREADABLE',
      aliases
        ? `${label} expands YAML aliases more than ${maxYamlAliasCount} times (an alias bomb?); write the values out or use fewer aliases`
        : `${label} is not usable YAML: ${(cause as Error).message}`,
      { where: fileWhere, cause },
    );
  }
}

/** Reads a YAML or JSON file and validates it with `schema`, failing with a precise CubeError. */
export function loadStructuredFile<S extends z.ZodType>(file: string, schema: S): z.output<S> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new CubeError(
      code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE',
      code === 'ENOENT'
        ? `file not found: ${file}`
        : `cannot read ${file}: ${(cause as Error).message}`,
      { where: { file }, cause },
    );
  }
  const parsed = schema.safeParse(parseStructuredText(text, file));
  if (!parsed.success) throw schemaError(parsed.error, { file });
  return parsed.data;
}
