import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CubeError } from '../../src/core/index.ts';
import { defaultCluster, loadClusterFile } from '../../src/hardware/index.ts';
import { defaultGlobalBatch, planJob, type Plan } from '../../src/plan/index.ts';
import {
  activationBytesPerLayer,
  getModel,
  nonLayerActivationBytes,
  totalParams,
} from '../../src/zoo/index.ts';

const gib = 1024 ** 3;
const root = new URL('../../', import.meta.url).pathname;

function only(plans: readonly Plan[]): Plan {
  assert.equal(plans.length, 1);
  return plans[0] as Plan;
}

describe('planJob', () => {
  test('memory of Llama-2-7B on 8 x A100-80GB with ZeRO-1 matches a hand computation', () => {
    const model = getModel('llama-2-7b');
    const r = planJob({
      model,
      cluster: defaultCluster({ accelerator: 'a100-80g', gpus: 8 }),
      seqLen: 4096,
      globalBatch: 64,
      skipScaling: true,
      pins: { tp: 1, pp: 1, cp: 1, zero: 1, microBatch: 1, recompute: 'full', offload: 'none' },
    });
    const p = only(r.plans);
    const P = totalParams(model);
    // bf16 weights and grads replicated; fp32 master + Adam moments (12 B) sharded over dp = 8.
    assert.equal(p.memory['weights'], 2 * P);
    assert.equal(p.memory['gradients'], 2 * P);
    assert.equal(p.memory['optimizer'], (12 * P) / 8);
    // Full recomputation keeps each of the 32 layers' inputs (2 s h bytes), plus one layer's
    // full activations while it is recomputed (flash attention: no s x s scores) and the logits.
    const s = 4096;
    const h = 4096;
    const working = activationBytesPerLayer(model, {
      seqLen: s,
      microBatch: 1,
      tp: 1,
      sp: false,
      recompute: 'selective',
      dropout: false,
    })[0] as number;
    const logits = nonLayerActivationBytes(model, {
      seqLen: s,
      microBatch: 1,
      tp: 1,
      sp: false,
      dropout: false,
    });
    assert.equal(p.memory['activations'], 32 * 2 * s * h + working + logits);
    assert.equal(p.memory['runtime'], gib);
    const sum =
      (p.memory['weights'] ?? 0) +
      (p.memory['gradients'] ?? 0) +
      (p.memory['optimizer'] ?? 0) +
      (p.memory['activations'] ?? 0) +
      (p.memory['buffers'] ?? 0) +
      gib;
    assert.ok(Math.abs((p.memory['reserve'] ?? 0) - 0.05 * sum) < 1);
    assert.ok(Math.abs(p.memoryGiB - (sum * 1.05) / gib) < 1e-9);
    // 6.74B parameters: 12.55 GiB of weights, the same of grads, a 9.41 GiB optimizer shard,
    // ~2 GiB of activations, 1 GiB runtime, 5% reserve: ~39.5 GiB.
    assert.ok(Math.abs(p.memoryGiB - 39.5) < 0.2, `memory ${p.memoryGiB}`);
    // The checkpoint of one rank: its weights plus its optimizer shard.
    assert.equal(p.checkpointBytesPerGpu, 2 * P + (12 * P) / 8);
  });

  test('pinning every dimension evaluates exactly that configuration', () => {
    const r = planJob({
      model: getModel('llama-3.1-70b'),
      cluster: defaultCluster({ accelerator: 'h100-sxm', gpus: 64 }),
      top: 10,
      skipScaling: true,
      pins: {
        tp: 8,
        pp: 4,
        vpp: 2,
        cp: 1,
        ep: 1,
        sp: true,
        microBatch: 1,
        zero: 1,
        recompute: 'selective',
        offload: 'none',
      },
    });
    const p = only(r.plans);
    assert.deepEqual(
      [p.tp, p.pp, p.vpp, p.dp, p.cp, p.ep, p.sp, p.zero, p.microBatch, p.recompute, p.offload],
      [8, 4, 2, 2, 1, 1, true, 1, 1, 'selective', 'none'],
    );
    assert.equal(p.gradAccum, r.globalBatch / (2 * 1));
  });

  test('plans come best first, fit in memory, and their figures agree with each other', () => {
    const cluster = defaultCluster({ accelerator: 'h100-sxm', gpus: 64 });
    const r = planJob({ model: getModel('llama-3.1-8b'), cluster, top: 5 });
    assert.equal(r.reason, null);
    assert.ok(r.plans.length > 1);
    for (let i = 1; i < r.plans.length; i += 1)
      assert.ok((r.plans[i - 1]?.tokensPerS ?? 0) >= (r.plans[i]?.tokensPerS ?? 0) * 0.999);
    for (const p of r.plans) {
      assert.ok(p.memoryGiB <= 80, `${p.memoryGiB} GiB`);
      assert.ok(p.tp <= 8, 'tensor parallelism stays inside a server');
      const sum = Object.values(p.time).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - p.stepTimeS) < 1e-9 * p.stepTimeS);
      assert.ok(Math.abs(p.tokensPerS - (r.globalBatch * r.seqLen) / p.stepTimeS) < 1e-6);
      assert.ok(Math.abs(p.mfu - p.tflopsPerGpu / 989.4) < 1e-6);
      assert.equal(p.dp * p.tp * p.pp * p.cp, 64);
      assert.equal(p.gradAccum * p.dp * p.microBatch, r.globalBatch);
    }
  });

  test('on one server the best plan is its own scaling reference', () => {
    const r = planJob({
      model: getModel('qwen2.5-7b'),
      cluster: defaultCluster({ accelerator: 'h100-sxm', gpus: 8 }),
      top: 1,
    });
    assert.ok(Math.abs((r.plans[0]?.scalingEfficiency ?? 0) - 1) < 1e-9);
  });

  test('scaling efficiency falls below one when data parallelism crosses the network', () => {
    const r = planJob({
      model: getModel('llama-3.1-8b'),
      cluster: defaultCluster({ accelerator: 'a100-80g', gpus: 1024 }),
      globalBatch: 1024,
      top: 1,
      pins: { tp: 1, pp: 1, cp: 1, microBatch: 1 },
    });
    const se = r.plans[0]?.scalingEfficiency ?? 0;
    assert.ok(se < 1 && se > 0.5, `scaling efficiency ${se}`);
  });

  test('a model too big for the cluster gets no plans and says what the smallest plan needs', () => {
    const r = planJob({
      model: getModel('llama-3.1-405b'),
      cluster: defaultCluster({ accelerator: 'a100-80g', gpus: 8 }),
    });
    assert.equal(r.plans.length, 0);
    assert.match(r.reason ?? '', /fits no configuration/);
    assert.match(r.reason ?? '', /needs [\d.]+ GiB per GPU but the GPU has 80 GiB/);
    assert.match(r.reason ?? '', /use at least ~\d+ GPUs/);
  });

  test('CPU offload of the optimizer state lets a model fit that otherwise does not', () => {
    const request = {
      model: getModel('llama-2-70b'),
      cluster: defaultCluster({ accelerator: 'a100-80g', gpus: 8 }),
      globalBatch: 64,
      skipScaling: true,
    } as const;
    const without = planJob({ ...request, pins: { offload: 'none' } });
    assert.equal(without.plans.length, 0);
    const withOffload = planJob(request);
    const best = withOffload.plans[0];
    assert.ok(best !== undefined);
    assert.notEqual(best.offload, 'none');
    assert.equal(best.memory['optimizer'], 0);
  });

  test('expert parallelism divides the experts and prices the all-to-all', () => {
    const r = planJob({
      model: getModel('mixtral-8x7b'),
      cluster: defaultCluster({ accelerator: 'h100-sxm', gpus: 64 }),
      skipScaling: true,
      pins: { tp: 1, pp: 1, cp: 1, ep: 8, microBatch: 1 },
      top: 1,
    });
    const p = r.plans[0];
    assert.ok(p !== undefined, r.reason ?? '');
    assert.equal(p.ep, 8);
    assert.ok((p.time['ep'] ?? 0) > 0);
  });

  test('a heterogeneous cluster gives the faster accelerator more layers', () => {
    const cluster = loadClusterFile(`${root}examples/clusters/lab-hetero.yaml`);
    const r = planJob({
      model: getModel('llama-2-13b'),
      cluster,
      pins: { tp: 8, pp: 3 },
      top: 1,
      skipScaling: true,
    });
    const stages = r.plans[0]?.stages ?? [];
    assert.deepEqual(
      stages.map((s) => s.accelerator),
      ['a100-80g', 'a100-80g', 'mi300x'],
    );
    assert.ok((stages[2]?.layers ?? 0) > (stages[0]?.layers ?? 0));
    assert.equal(
      stages.reduce((n, s) => n + s.layers, 0),
      40,
    );
  });

  test('scaling efficiency on a heterogeneous cluster is measured against each server type', () => {
    const cluster = loadClusterFile(`${root}examples/clusters/lab-hetero.yaml`);
    const r = planJob({ model: getModel('llama-2-13b'), cluster, top: 1 });
    const se = r.plans[0]?.scalingEfficiency ?? Number.NaN;
    // The MI300X servers are faster than the A100 ones: against an A100-only reference the
    // ratio would be far above 1.
    assert.ok(se > 0.5 && se <= 1.05, `scaling efficiency ${se}`);
  });

  test('the pipeline gives the stage holding the LM head fewer layers', () => {
    const r = planJob({
      model: getModel('llama-3.1-8b'),
      cluster: defaultCluster({ accelerator: 'h100-sxm', gpus: 32 }),
      skipScaling: true,
      pins: { tp: 1, pp: 4, vpp: 1, cp: 1, microBatch: 1 },
      top: 1,
    });
    const layers = (r.plans[0]?.stages ?? []).map((s) => s.layers);
    assert.equal(layers.length, 4);
    assert.ok((layers[3] ?? 99) < (layers[1] ?? 0), `split ${layers.join(',')}`);
  });

  test('fp8 runs faster where the accelerator has it and is refused where it does not', () => {
    const base = {
      model: getModel('llama-3.1-8b'),
      cluster: defaultCluster({ accelerator: 'h100-sxm', gpus: 8 }),
      skipScaling: true,
      top: 1,
    };
    const bf16 = planJob(base).plans[0]?.stepTimeS ?? 0;
    const fp8 = planJob({ ...base, precision: 'fp8' }).plans[0]?.stepTimeS ?? Infinity;
    assert.ok(fp8 < bf16);
    assert.throws(
      () =>
        planJob({
          ...base,
          cluster: defaultCluster({ accelerator: 'a100-80g', gpus: 8 }),
          precision: 'fp8',
        }),
      (e: unknown) => e instanceof CubeError && /no fp8/.test(e.message),
    );
  });

  test('the default global batch divides by the odd part of the GPU count', () => {
    assert.equal(defaultGlobalBatch(8), 1024);
    assert.equal(defaultGlobalBatch(16384), 4096);
    assert.equal(defaultGlobalBatch(2520) % 315, 0);
  });
});

describe('impossible pinned layouts are bad input naming the constraint', () => {
  const cluster = defaultCluster({ accelerator: 'h100-sxm', gpus: 64 });
  const cases: [string, Parameters<typeof planJob>[0]['pins'], string, RegExp][] = [
    [
      'tp not dividing the heads',
      { tp: 3 },
      'llama-2-7b',
      /--tp 3 does not divide the 32 attention heads/,
    ],
    ['pp larger than the layers', { pp: 64 }, 'llama-2-7b', /--pp 64 is larger than the 32 layers/],
    ['ep on a dense model', { ep: 2 }, 'llama-2-7b', /has no experts/],
    [
      'ep not dividing the experts',
      { ep: 3 },
      'mixtral-8x7b',
      /--ep 3 does not divide the 8 experts/,
    ],
    [
      'a product not dividing the GPUs',
      { tp: 8, pp: 6 },
      'llama-2-70b',
      /= 48 does not divide the 64 GPUs/,
    ],
    ['offload all without ZeRO-3', { offload: 'all', zero: 1 }, 'llama-2-7b', /needs --zero 3/],
  ];
  for (const [name, pins, model, pattern] of cases)
    test(name, () => {
      assert.throws(
        () => planJob({ model: getModel(model), cluster, pins }),
        (e: unknown) =>
          e instanceof CubeError &&
          e.code === 'INVALID_VALUE' &&
          e.isBadInput &&
          pattern.test(e.message),
      );
    });
});
