import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CubeError } from '../../src/core/index.ts';
import {
  getModel,
  getTrainingRecipe,
  modelStateBytes,
  totalParams,
  trainingStateBytes,
} from '../../src/zoo/index.ts';

describe('weight, gradient and optimizer state bytes', () => {
  test('bf16 mixed precision with Adam is 16 bytes per parameter: 2 + 2 + 4 + 4 + 4', () => {
    const s = trainingStateBytes(1000, { recipe: 'bf16-mixed' });
    assert.deepEqual(s, {
      weightBytes: 2000,
      gradientBytes: 2000,
      optimizerBytes: 12_000,
      totalBytes: 16_000,
    });
  });

  test('fp32 gradients make it 18 bytes per parameter, the fp8 recipe 17', () => {
    assert.equal(trainingStateBytes(1, { recipe: 'bf16-mixed-fp32-grads' }).totalBytes, 18);
    assert.equal(trainingStateBytes(1, { recipe: 'fp8-mixed' }).totalBytes, 17);
    assert.equal(trainingStateBytes(1, { recipe: 'fp32' }).totalBytes, 16);
  });

  test('ZeRO stages shard optimizer state, then gradients, then weights over the data-parallel ranks', () => {
    const o = { recipe: 'bf16-mixed', dataParallel: 8 } as const;
    assert.equal(trainingStateBytes(8, { ...o, zeroStage: 1 }).totalBytes, 16 + 16 + 12);
    assert.equal(trainingStateBytes(8, { ...o, zeroStage: 2 }).totalBytes, 16 + 2 + 12);
    assert.equal(trainingStateBytes(8, { ...o, zeroStage: 3 }).totalBytes, 16);
  });

  test('a model’s state counts every parameter, all MoE experts included', () => {
    const m = getModel('mixtral-8x7b');
    assert.equal(modelStateBytes(m, { recipe: 'bf16-mixed' }).totalBytes, 16 * totalParams(m));
  });

  test('an unknown recipe fails with INVALID_VALUE listing the known ones', () => {
    assert.throws(
      () => getTrainingRecipe('bf17'),
      (e: unknown) =>
        e instanceof CubeError &&
        e.code === 'INVALID_VALUE' &&
        (e.where.allowed ?? []).includes('bf16-mixed'),
    );
  });
});
