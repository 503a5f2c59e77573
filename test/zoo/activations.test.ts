import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  activationBytes,
  activationBytesPerLayer,
  getModel,
  loadModelFile,
  nonLayerActivationBytes,
} from '../../src/zoo/index.ts';

const fixture = (name: string): string => new URL(`./fixtures/${name}`, import.meta.url).pathname;
// The fixture GPT: h = 1024, a = 16, 24 layers, 4h plain GELU MLP.
const gpt = loadModelFile(fixture('gpt-megatron.json'));
const [h, a] = [1024, 16];

describe('activation bytes per layer (Korthikanti et al. 2022)', () => {
  test('a GPT layer stores s b h (34 + 5 a s / h) bytes without parallelism', () => {
    // s = 2048, b = 2: s b h = 4,194,304; 5 a s / h = 5 x 16 x 2048 / 1024 = 160.
    // 4,194,304 x (34 + 160) = 813,694,976 bytes per layer.
    const [s, b] = [2048, 2];
    const perLayer = activationBytesPerLayer(gpt, { seqLen: s, microBatch: b });
    assert.equal(perLayer.length, 24);
    assert.equal(perLayer[0], s * b * h * (34 + (5 * a * s) / h));
    assert.equal(perLayer[0], 813_694_976);
  });

  test('tensor parallelism without sequence parallelism leaves 10 s b h replicated', () => {
    // s b h (10 + 24/t + 5 a s / (h t)) with t = 4.
    const [s, b, t] = [2048, 1, 4];
    const [bytes] = activationBytesPerLayer(gpt, { seqLen: s, microBatch: b, tp: t });
    assert.equal(bytes, s * b * h * (10 + 24 / t + (5 * a * s) / (h * t)));
  });

  test('sequence parallelism divides everything by t', () => {
    const [s, b, t] = [2048, 1, 8];
    const [bytes] = activationBytesPerLayer(gpt, { seqLen: s, microBatch: b, tp: t, sp: true });
    assert.equal(bytes, ((s * b * h) / t) * (34 + (5 * a * s) / h));
  });

  test('selective recomputation keeps 34 s b h / t; full recomputation keeps 2 s b h', () => {
    const [s, b, t] = [2048, 1, 8];
    const o = { seqLen: s, microBatch: b, tp: t, sp: true };
    assert.equal(
      activationBytesPerLayer(gpt, { ...o, recompute: 'selective' })[0],
      (34 * s * b * h) / t,
    );
    assert.equal(activationBytesPerLayer(gpt, { ...o, recompute: 'full' })[0], (2 * s * b * h) / t);
    assert.equal(
      activationBytesPerLayer(gpt, { seqLen: s, microBatch: b, recompute: 'full' })[0],
      2 * s * b * h,
    );
  });

  test('without dropout the masks and the dropout output disappear: 32 s b h + 2 a s^2 b', () => {
    const [s, b] = [1024, 1];
    const [bytes] = activationBytesPerLayer(gpt, { seqLen: s, microBatch: b, dropout: false });
    assert.equal(bytes, 32 * s * b * h + 2 * a * s * s * b);
  });

  test('GQA stores k and v at the KV width; a gated MLP stores four intermediate tensors', () => {
    // Llama-3-8B, s = 1, b = 1, no dropout, selective (no s^2 term):
    // norms 2 x 2h, attention input 2h, q 2 x 4096, k and v 2 x 1024 each, out input 2 x 4096,
    // MLP input 2h, gate/up/act/product 4 x 2 x 14336.
    const m = getModel('llama-3-8b');
    const [bytes] = activationBytesPerLayer(m, {
      seqLen: 1,
      microBatch: 1,
      dropout: false,
      recompute: 'selective',
    });
    const hh = 4096;
    assert.equal(bytes, 4 * hh + 2 * hh + 2 * (4096 + 1024 + 1024) + 2 * 4096 + 2 * hh + 8 * 14336);
  });

  test('an MoE layer stores its chosen experts’ tensors, not all experts’', () => {
    const m = getModel('mixtral-8x7b');
    const o = { seqLen: 1, microBatch: 1, dropout: false, recompute: 'selective' } as const;
    const [bytes] = activationBytesPerLayer(m, o);
    // as a dense layer of width 14336 would, plus router probs (2 x 8), plus per chosen expert
    // its input copy and output (2 x 2h) and intermediates (8 x 14336), minus the one dense MLP.
    const hh = 4096;
    const attention = 4 * hh + 2 * hh + 2 * (4096 + 1024 + 1024) + 2 * 4096;
    assert.equal(bytes, attention + 2 * hh + 2 * 8 + 2 * (4 * hh + 8 * 14336));
  });

  test('sliding-window layers store scores for the window only', () => {
    const m = getModel('mistral-7b');
    const o = { microBatch: 1, dropout: false } as const;
    const core = (s: number): number =>
      (activationBytesPerLayer(m, { ...o, seqLen: s })[0] ?? 0) -
      (activationBytesPerLayer(m, { ...o, seqLen: s, recompute: 'selective' })[0] ?? 0);
    assert.equal(core(8192), 2 * 32 * 8192 * 4096);
  });

  test('the whole model sums its layers, and the output layer adds 4 s b h (1 + V / h) / t with SP', () => {
    const o = { seqLen: 2048, microBatch: 1, tp: 2, sp: true };
    const layers = activationBytesPerLayer(gpt, o).reduce((x, y) => x + y, 0);
    assert.equal(activationBytes(gpt, o), layers);
    // the embedding dropout mask s b h / t besides the paper's output-layer term
    const sbh = 2048 * 1024;
    assert.equal(nonLayerActivationBytes(gpt, o), sbh / 2 + ((4 * sbh) / 2) * (1 + 50304 / 1024));
  });
});
