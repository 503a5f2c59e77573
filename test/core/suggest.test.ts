import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nearestNames, unknownIdError } from '../../src/core/index.ts';

const ids = ['llama-2-7b', 'llama-2-13b', 'llama-3-8b', 'mixtral-8x7b', 'deepseek-v3', 'qwen3-8b'];

test('a typo suggests the closest id first', () => {
  assert.equal(nearestNames('lama-2-7b', ids)[0], 'llama-2-7b');
  assert.equal(nearestNames('deepseek-v2', ids)[0], 'deepseek-v3');
});

test('a prefix suggests the ids that contain it', () => {
  assert.deepEqual(nearestNames('mixtral', ids), ['mixtral-8x7b']);
});

test('nothing plausible suggests nothing', () => {
  assert.deepEqual(nearestNames('zzzzzzzz', ids), []);
});

test('an unknown id error lists the allowed ids and a suggestion', () => {
  const error = unknownIdError('model', 'qwen3-7b', ids, { field: '--model' });
  assert.equal(error.code, 'UNKNOWN_ID');
  assert.equal(error.isBadInput, true);
  assert.deepEqual(error.where.allowed, ids);
  assert.equal(error.where.field, '--model');
  assert.match(error.hint ?? '', /qwen3-8b/);
});
