import { basename, extname, sep } from 'node:path';
import { z } from 'zod';
import { distance } from 'fastest-levenshtein';
import { loadStructuredFile, schemaError, type ErrorWhere } from '../core/index.ts';
import { buildModel } from './build-model.ts';
import { getModel } from './catalog.ts';
import type { ModelArchitecture } from './model.ts';
import {
  mlaConfigKeys,
  modelConfigKeys,
  modelConfigSchema,
  moeConfigKeys,
} from './model-config.ts';

/**
 * Model files: one JSON or YAML object with the keys of a models.json entry, optionally with
 * the structured keys. Unknown keys are errors (with the nearest known key as a suggestion), so a
 * typo such as `hidden_sise` can never be silently ignored.
 */

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let at: unknown = raw;
  for (const key of path) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<PropertyKey, unknown>)[key];
  }
  return at;
}

function knownKeysAt(path: readonly PropertyKey[]): readonly string[] {
  if (path.length === 0) return modelConfigKeys;
  if (path[0] === 'moe') return moeConfigKeys;
  if (path[0] === 'mla') return mlaConfigKeys;
  return [];
}

/**
 * The known key a typo most likely meant, by edit distance alone (core's nearestNames prefers
 * substrings, which for keys picks "id" inside "hidden_sise").
 */
function nearestKey(key: string, known: readonly string[]): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const name of known) {
    const d = distance(key, name);
    if (best === undefined || d < best.d) best = { name, d };
  }
  return best !== undefined && best.d <= Math.max(2, Math.ceil(key.length / 3))
    ? best.name
    : undefined;
}

/** Rewrites Zod's issues so each names the exact key: unknown keys get their own path and a suggestion. */
function precise(error: z.ZodError, raw: unknown): z.ZodError {
  const issues: z.core.$ZodIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const near = nearestKey(key, knownKeysAt(issue.path));
        issues.push({
          code: 'custom',
          path: [...issue.path, key],
          message: `unknown key${near === undefined ? '' : ` (did you mean "${near}"?)`}`,
          input: undefined,
        });
      }
    } else if (issue.code === 'invalid_type' && valueAt(raw, issue.path) === undefined) {
      issues.push({ ...issue, message: 'required key is missing' });
    } else {
      issues.push(issue);
    }
  }
  // An unknown key often explains a "missing" one (a typo), so it is reported first.
  const unknownFirst = [
    ...issues.filter((i) => i.message.startsWith('unknown key')),
    ...issues.filter((i) => !i.message.startsWith('unknown key')),
  ];
  return new z.ZodError(unknownFirst);
}

/** Loads and resolves a model file; invalid files fail with INVALID_FILE naming the key path. */
export function loadModelFile(file: string): ModelArchitecture {
  const raw = loadStructuredFile(
    file,
    z.record(z.string(), z.unknown(), { error: 'expected one object with the model keys' }),
  );
  const parsed = modelConfigSchema.safeParse(raw);
  if (!parsed.success) throw schemaError(precise(parsed.error, raw), { file });
  return buildModel(parsed.data, { file, fallbackId: basename(file, extname(file)) });
}

/** True when `value` names a file rather than a model id. */
export function looksLikeModelFile(value: string): boolean {
  return /\.(json|ya?ml)$/i.test(value) || value.includes('/') || value.includes(sep);
}

/** A model id or a model file (a value ending in .json/.yaml/.yml or containing a path separator). */
export function resolveModel(idOrFile: string, where: ErrorWhere = {}): ModelArchitecture {
  return looksLikeModelFile(idOrFile) ? loadModelFile(idOrFile) : getModel(idOrFile, where);
}
