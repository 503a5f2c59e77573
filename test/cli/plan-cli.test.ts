import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, test } from 'node:test';

const root = new URL('../../', import.meta.url).pathname;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function cube(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['bin/cube.js', ...args],
      { cwd: root, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const contractKeys = [
  'tp',
  'pp',
  'vpp',
  'dp',
  'cp',
  'ep',
  'sp',
  'zero',
  'microBatch',
  'recompute',
  'offload',
  'memoryGiB',
  'stepTimeS',
  'tokensPerS',
  'tflopsPerGpu',
  'mfu',
  'scalingEfficiency',
];

describe('cube plan', () => {
  test('--json prints the model, accelerator, GPU count and the top plans with the contract fields', async () => {
    const r = await cube(
      'plan',
      '--model',
      'llama-3.1-8b',
      '--accelerator',
      'h100-sxm',
      '--gpus',
      '16',
      '--top',
      '3',
      '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      model: string;
      accelerator: string;
      gpus: number;
      plans: Record<string, unknown>[];
    };
    assert.equal(out.model, 'llama-3.1-8b');
    assert.equal(out.accelerator, 'h100-sxm');
    assert.equal(out.gpus, 16);
    assert.equal(out.plans.length, 3);
    for (const plan of out.plans) for (const key of contractKeys) assert.ok(key in plan, key);
    const first = out.plans[0] ?? {};
    assert.equal(typeof first['mfu'], 'number');
    assert.ok((first['tokensPerS'] as number) >= (out.plans[1]?.['tokensPerS'] as number));
  });

  test('with every dimension pinned it prints exactly that plan', async () => {
    const r = await cube(
      'plan',
      '--model',
      'llama-2-7b',
      '--accelerator',
      'a100-80g',
      '--gpus',
      '8',
      '--tp',
      '2',
      '--pp',
      '2',
      '--vpp',
      '1',
      '--cp',
      '1',
      '--ep',
      '1',
      '--sp',
      'on',
      '--micro-batch',
      '1',
      '--zero',
      '1',
      '--recompute',
      'selective',
      '--offload',
      'none',
      '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    const plans = (JSON.parse(r.stdout) as { plans: Record<string, unknown>[] }).plans;
    assert.equal(plans.length, 1);
    assert.deepEqual(
      [plans[0]?.['tp'], plans[0]?.['pp'], plans[0]?.['dp'], plans[0]?.['sp'], plans[0]?.['zero']],
      [2, 2, 2, true, 1],
    );
  });

  test('the human form ranks plans and breaks down the best one', async () => {
    const r = await cube(
      'plan',
      '--model',
      'qwen2.5-7b',
      '--accelerator',
      'h100-sxm',
      '--gpus',
      '8',
      '--top',
      '2',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /layout\s+sp\s+zero/);
    assert.match(r.stdout, /best plan: tp\d/);
    assert.match(r.stdout, /memory per GPU/);
    assert.match(r.stdout, /step time:/);
  });

  test('--explain says why the alternatives lost', async () => {
    const r = await cube(
      'plan',
      '--model',
      'llama-2-13b',
      '--accelerator',
      'a100-80g',
      '--gpus',
      '8',
      '--explain',
      '--top',
      '1',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /why the alternatives lost/);
    assert.match(r.stdout, /the best plan/);
    assert.match(r.stdout, /does not fit|more exposed|bubble|more compute/);
  });

  test('a model that fits nothing prints an empty list with the reason and exits 1', async () => {
    const r = await cube(
      'plan',
      '--model',
      'llama-3.1-405b',
      '--accelerator',
      'a100-80g',
      '--gpus',
      '8',
      '--json',
    );
    assert.equal(r.code, 1);
    const out = JSON.parse(r.stdout) as { plans: unknown[]; reason: string };
    assert.deepEqual(out.plans, []);
    assert.match(out.reason, /fits no configuration/);
    assert.match(r.stderr, /INFEASIBLE/);
  });

  test('an impossible pinned layout exits 2 naming the constraint', async () => {
    const r = await cube(
      'plan',
      '--model',
      'llama-2-7b',
      '--accelerator',
      'a100-80g',
      '--gpus',
      '8',
      '--tp',
      '3',
    );
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--tp 3 does not divide the 32 attention heads/);
  });

  test('a bad flag value exits 2 naming the flag', async () => {
    const r = await cube(
      'plan',
      '--model',
      'llama-2-7b',
      '--accelerator',
      'a100-80g',
      '--gpus',
      '8',
      '--sp',
      'maybe',
    );
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--sp must be on or off/);
    const unknown = await cube(
      'plan',
      '--model',
      'llama-9',
      '--accelerator',
      'a100-80g',
      '--gpus',
      '8',
    );
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /UNKNOWN_ID/);
  });
});
