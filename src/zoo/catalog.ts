import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { schemaError, unknownIdError, type ErrorWhere } from '../core/index.ts';
import { buildModel } from './build-model.ts';
import { modelStructure, type Fact, type ModelOverlay } from './data/structure.ts';
import type { ModelArchitecture } from './model.ts';
import { modelConfigSchema } from './model-config.ts';

/**
 * The shipped models: src/zoo/data/models.json (a verbatim copy of the published configs with
 * their sources) merged with the structured overlay of data/structure.ts, validated with the
 * model-file schema and resolved once, on first use.
 */

const dataFile = 'src/zoo/data/models.json';

/** The overlay's values as config keys (the reasons stay in the overlay). */
function overlayValues(overlay: ModelOverlay): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(overlay)) {
    if (key === 'moe') continue;
    values[key] = (value as Fact<unknown>).value;
  }
  return values;
}

function mergeEntry(entry: Record<string, unknown>, overlay: ModelOverlay | undefined): unknown {
  if (overlay === undefined) return entry;
  const merged: Record<string, unknown> = { ...entry, ...overlayValues(overlay) };
  if (overlay.moe !== undefined) {
    const moe: Record<string, unknown> = { ...(entry['moe'] as Record<string, unknown>) };
    for (const [key, value] of Object.entries(overlay.moe))
      moe[key] = (value as Fact<unknown>).value;
    merged['moe'] = moe;
  }
  return merged;
}

let cache:
  | {
      readonly list: readonly ModelArchitecture[];
      readonly byId: ReadonlyMap<string, ModelArchitecture>;
    }
  | undefined;

function load(): NonNullable<typeof cache> {
  if (cache !== undefined) return cache;
  const raw = JSON.parse(
    readFileSync(new URL('./data/models.json', import.meta.url), 'utf8'),
  ) as unknown;
  const entries = z.array(z.record(z.string(), z.unknown())).parse(raw);
  const list = entries.map((entry, i) => {
    const id = typeof entry['id'] === 'string' ? entry['id'] : `[${i}]`;
    const parsed = modelConfigSchema.safeParse(mergeEntry(entry, modelStructure[id]));
    if (!parsed.success) throw schemaError(parsed.error, { file: `${dataFile} (${id})` });
    return buildModel(parsed.data, { file: `${dataFile} (${id})` });
  });
  cache = { list, byId: new Map(list.map((m) => [m.id, m])) };
  return cache;
}

/** Every shipped model, in the order of models.json. */
export function listModels(): readonly ModelArchitecture[] {
  return load().list;
}

/** The ids of the shipped models. */
export function modelIds(): readonly string[] {
  return load().list.map((m) => m.id);
}

/** A shipped model by id; an unknown id fails with UNKNOWN_ID and the nearest ids as a hint. */
export function getModel(id: string, where: ErrorWhere = {}): ModelArchitecture {
  const model = load().byId.get(id);
  if (model === undefined) throw unknownIdError('model', id, modelIds(), where);
  return model;
}

/** The structured facts (with reasons) the overlay adds to a shipped model, if any. */
export function modelOverlay(id: string): ModelOverlay | undefined {
  return modelStructure[id];
}
