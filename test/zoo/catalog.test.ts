import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { CubeError } from '../../src/core/index.ts';
import { getModel, listModels, modelIds, modelOverlay } from '../../src/zoo/index.ts';

const shipped = JSON.parse(
  readFileSync(new URL('../../src/zoo/data/models.json', import.meta.url), 'utf8'),
) as {
  id: string;
  attention_pattern: string;
  sliding_window: number | null;
  norm_layout: string;
}[];

describe('the model catalog', () => {
  test('holds every model of models.json under its id, in order', () => {
    assert.equal(shipped.length, 88);
    assert.deepEqual(
      modelIds(),
      shipped.map((m) => m.id),
    );
  });

  test('the project copy of models.json is the shared file unchanged, when the shared file is beside the repo', () => {
    let sharedText: string;
    try {
      sharedText = readFileSync(
        new URL('../../../shared/data/models.json', import.meta.url),
        'utf8',
      );
    } catch {
      return; // not beside this checkout
    }
    const ours = readFileSync(new URL('../../src/zoo/data/models.json', import.meta.url), 'utf8');
    assert.equal(ours, sharedText);
  });

  test('an unknown id fails with UNKNOWN_ID and suggests the nearest ids', () => {
    assert.throws(
      () => getModel('llama-2-7'),
      (e: unknown) =>
        e instanceof CubeError && e.code === 'UNKNOWN_ID' && (e.hint ?? '').includes('llama-2-7b'),
    );
  });

  test('every parallel-block model says how many norms its block has', () => {
    for (const m of shipped.filter((x) => x.norm_layout === 'parallel'))
      assert.ok(modelOverlay(m.id)?.block_layout !== undefined, m.id);
  });

  test('every model with a sliding_window applies it on at least one layer', () => {
    for (const entry of shipped.filter((x) => x.sliding_window !== null)) {
      const m = getModel(entry.id);
      const windows = m.layers.flatMap((l) =>
        l.attention.kind === 'softmax' && l.attention.span.kind === 'sliding'
          ? [l.attention.span.windowTokens]
          : [],
      );
      assert.ok(windows.length > 0, entry.id);
      assert.ok(
        windows.every((w) => w === entry.sliding_window),
        entry.id,
      );
    }
  });

  test('the overlay reproduces the layer patterns the free text describes', () => {
    const globals = (id: string): number[] =>
      getModel(id)
        .layers.filter((l) => l.attention.kind !== 'linear' && l.attention.span.kind === 'full')
        .map((l) => l.index);
    // "global layers are 5,11,17,23 (every 6th)"
    assert.deepEqual(globals('gemma-3-1b'), [5, 11, 17, 23]);
    // "alternating local (sliding 4096, even layers 0,2,4,...) / global"
    assert.deepEqual(globals('gemma-2-2b').slice(0, 3), [1, 3, 5]);
    // "every 4th layer is a global NoPE layer"
    assert.deepEqual(globals('llama-4-scout').slice(0, 3), [3, 7, 11]);
    // "10 softmax layers of 80"
    assert.equal(globals('minimax-text-01').length, 10);
    assert.equal(
      getModel('minimax-text-01').layers.filter((l) => l.attention.kind === 'linear').length,
      70,
    );
  });

  test('MLA models keep q_lora_rank null as a direct q projection', () => {
    const a = getModel('deepseek-v2-lite').layers[0]?.attention;
    assert.equal(a?.kind === 'mla' ? a.qLoraRank : 'not mla', null);
  });

  test('all 88 models resolve quickly', () => {
    const start = performance.now();
    assert.equal(listModels().length, 88);
    assert.ok(performance.now() - start < 2000);
  });
});
