import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getAccelerator } from '../../src/hardware/index.ts';
import { deviceSpeed, gemmSeconds, memoryBoundSeconds } from '../../src/plan/kernels.ts';
import { balanceStages, evenSplit } from '../../src/plan/layout.ts';
import { divisors } from '../../src/plan/search.ts';

describe('stage balancing', () => {
  test('equal layers and no extra work split evenly', () => {
    const row = new Array<number>(32).fill(1);
    assert.deepEqual(balanceStages([row, row, row, row], [0, 0, 0, 0], 4), [8, 8, 8, 8]);
  });

  test('the stage carrying the LM head gets fewer layers', () => {
    const row = new Array<number>(32).fill(1);
    const counts = balanceStages([row, row, row, row], [0, 0, 0, 3], 4);
    assert.equal(
      counts.reduce((a, b) => a + b, 0),
      32,
    );
    assert.ok((counts[3] ?? 0) < 8);
    assert.ok(Math.max(...counts.slice(0, 3)) >= 9);
  });

  test('a three times faster stage takes about three times the layers', () => {
    const slow = new Array<number>(40).fill(3);
    const fast = new Array<number>(40).fill(1);
    assert.deepEqual(balanceStages([slow, slow, fast], [0, 0, 0], 3), [8, 8, 24]);
  });

  test('every stage keeps at least one layer', () => {
    const row = [100, 1, 1, 1];
    const counts = balanceStages([row, row, row, row], [0, 0, 0, 0], 4);
    assert.deepEqual(counts, [1, 1, 1, 1]);
  });

  test('an even split gives the remainder to the first stages', () => {
    assert.deepEqual(evenSplit(10, 4), [3, 3, 2, 2]);
  });

  test('divisors are complete and ascending', () => {
    assert.deepEqual(divisors(36), [1, 2, 3, 4, 6, 9, 12, 18, 36]);
    assert.deepEqual(divisors(1), [1]);
  });
});

describe('kernel costs', () => {
  const a100 = deviceSpeed(getAccelerator('a100-80g'), 'bf16');
  assert.ok(a100 !== null);

  test('a large GEMM runs near the ceiling of the peak', () => {
    const m = 8192;
    const seconds = gemmSeconds(a100, m, m, m);
    const achieved = (2 * m ** 3) / seconds / 1e12;
    assert.ok(achieved > 0.95 * 312 * 0.79 && achieved <= 312 * 0.79, `${achieved} TFLOPS`);
  });

  test('a small GEMM runs far below the peak', () => {
    const seconds = gemmSeconds(a100, 64, 512, 512);
    const achieved = (2 * 64 * 512 * 512) / seconds / 1e12;
    assert.ok(achieved < 0.1 * 312, `${achieved} TFLOPS`);
  });

  test('a GEMM one row past a tile pays for the padding', () => {
    const even = gemmSeconds(a100, 8192, 8192, 8192);
    const ragged = gemmSeconds(a100, 8193, 8192, 8192);
    assert.ok(ragged > even * 1.01);
  });

  test('element-wise work is bound by memory bandwidth', () => {
    const bytes = 2039e9 * 0.8; // one second at the achievable 80% of HBM bandwidth
    assert.ok(Math.abs(memoryBoundSeconds(a100, bytes, 0) - 1) < 1e-9);
  });

  test('an accelerator without fp8 has no fp8 speed', () => {
    assert.equal(deviceSpeed(getAccelerator('a100-80g'), 'fp8'), null);
    assert.ok(deviceSpeed(getAccelerator('h100-sxm'), 'fp8') !== null);
  });
});
