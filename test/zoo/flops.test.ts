import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  executedTrainingFlopsPerToken,
  forwardFlopsPerToken,
  getModel,
  loadModelFile,
  meanAttendedKeys,
  megatronGptFlopsPerIteration,
  megatronTrainingFlopsPerToken,
  trainingFlopsPerToken,
} from '../../src/zoo/index.ts';

const fixture = (name: string): string => new URL(`./fixtures/${name}`, import.meta.url).pathname;

describe('training FLOPs per token', () => {
  test('GPT-3 175B at s = 2048 matches 72 s l h^2 (1 + s/6h + V/12lh) / s in the Megatron convention', () => {
    // l = 96, h = 12288, V = 50257, s = 2048.
    // 72 l h^2            = 72 x 96 x 150,994,944        = 1,043,677,052,928
    // 72 l h^2 x s/(6h)   = 12 l s h = 12 x 96 x 2048 x 12288 =  28,991,029,248
    // 72 l h^2 x V/(12lh) = 6 V h  = 6 x 50257 x 12288   =     3,705,348,096
    // sum                                                = 1,076,373,430,272 per token
    const gpt3 = getModel('gpt3-175b');
    const perToken = megatronTrainingFlopsPerToken(gpt3, { seqLen: 2048 });
    assert.equal(perToken, 1_076_373_430_272);
    const closedForm =
      megatronGptFlopsPerIteration({
        batch: 1,
        seqLen: 2048,
        layers: 96,
        hidden: 12288,
        vocab: 50257,
      }) / 2048;
    assert.ok(Math.abs(perToken / closedForm - 1) < 1e-12);
  });

  test('causal masking halves the attention term to a mean span of (s + 1) / 2', () => {
    // attention term 3 x 96 layers x 2 x 96 heads x (128 + 128) x 2049/2 = 14,502,592,512;
    // the rest (weights + head) 1,043,677,052,928 + 3,705,348,096.
    const gpt3 = getModel('gpt3-175b');
    assert.equal(
      trainingFlopsPerToken(gpt3, { seqLen: 2048, causal: true }),
      1_043_677_052_928 + 3_705_348_096 + 14_502_592_512,
    );
  });

  test('the mean attended span is capped by a sliding window and by chunks', () => {
    assert.equal(meanAttendedKeys({ kind: 'full' }, { seqLen: 8, causal: false }), 8);
    assert.equal(meanAttendedKeys({ kind: 'full' }, { seqLen: 8, causal: true }), 4.5);
    // window 4 over 8 tokens, causal: 1 + 2 + 3 + 4 + 4 x 4 = 26, / 8 = 3.25
    assert.equal(
      meanAttendedKeys({ kind: 'sliding', windowTokens: 4 }, { seqLen: 8, causal: true }),
      3.25,
    );
    assert.equal(
      meanAttendedKeys({ kind: 'sliding', windowTokens: 4 }, { seqLen: 8, causal: false }),
      4,
    );
    // chunks of 3 over 8 tokens: (1+2+3) x 2 + (1+2) = 15, / 8
    assert.equal(
      meanAttendedKeys({ kind: 'chunked', chunkTokens: 3 }, { seqLen: 8, causal: true }),
      15 / 8,
    );
  });

  test('a sliding window stops the attention term growing past the window', () => {
    const mistral = getModel('mistral-7b');
    const at = (s: number): number =>
      forwardFlopsPerToken(mistral, { seqLen: s, causal: false }).attentionScoreFlops;
    // 32 layers x 2 x 32 heads x (128 + 128) x 4096 keys
    assert.equal(at(4096), 32 * 2 * 32 * 256 * 4096);
    assert.equal(at(32768), at(4096));
    assert.ok(at(2048) < at(4096));
  });

  test('MLA uses its q/k head dim of 192 and v head dim of 128', () => {
    const v3 = getModel('deepseek-v3');
    const f = forwardFlopsPerToken(v3, { seqLen: 4096, causal: false });
    assert.equal(f.attentionScoreFlops, 61 * 2 * 128 * (192 + 128) * 4096);
  });

  test('MoE layers count only the experts a token uses, plus router and shared experts', () => {
    // Mixtral: 2 x (active params - embedding) is the weight term; the embedding lookup is free
    // and the untied head counts once.
    const m = getModel('mixtral-8x7b');
    const f = forwardFlopsPerToken(m, { seqLen: 1, causal: true });
    const norms = 32 * 2 * 4096 + 4096;
    const embedding = 32000 * 4096;
    assert.equal(f.layersMatmulFlops + f.headFlops, 2 * (12_879_925_248 - norms - embedding));
  });

  test('linear attention layers cost the same per token at any sequence length beyond a block', () => {
    const mm = getModel('minimax-text-01');
    const linearOnly = (s: number): number => {
      const all = forwardFlopsPerToken(mm, { seqLen: s, causal: true }).attentionScoreFlops;
      // 10 softmax layers: 2 x 64 x 256 x (s + 1)/2
      return all - 10 * 2 * 64 * 256 * ((s + 1) / 2);
    };
    assert.ok(Math.abs(linearOnly(8192) - linearOnly(65536)) < 1e-3);
  });

  test('the LM head counts even when tied, and training is three forwards', () => {
    const model = loadModelFile(fixture('gpt-megatron.json'));
    const f = forwardFlopsPerToken(model, { seqLen: 1024, causal: false });
    assert.equal(f.headFlops, 2 * 50304 * 1024);
    assert.equal(trainingFlopsPerToken(model, { seqLen: 1024, causal: false }), 3 * f.totalFlops);
  });

  test('recomputation adds the attention core (selective) or the layers’ forward (full)', () => {
    const model = getModel('llama-3-8b');
    const o = { seqLen: 8192, causal: true };
    const f = forwardFlopsPerToken(model, o);
    assert.equal(
      executedTrainingFlopsPerToken(model, { ...o, recompute: 'none' }),
      3 * f.totalFlops,
    );
    assert.equal(
      executedTrainingFlopsPerToken(model, { ...o, recompute: 'selective' }),
      3 * f.totalFlops + f.attentionScoreFlops,
    );
    assert.equal(
      executedTrainingFlopsPerToken(model, { ...o, recompute: 'full' }),
      4 * f.totalFlops - f.headFlops,
    );
  });
});
