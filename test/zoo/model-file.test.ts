import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CubeError } from '../../src/core/index.ts';
import { loadModelFile, looksLikeModelFile, resolveModel } from '../../src/zoo/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'cube-model-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const base = {
  hidden_size: 512,
  num_layers: 2,
  num_attention_heads: 8,
  intermediate_size: 2048,
  vocab_size: 1000,
};

function write(name: string, value: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
  return file;
}

function failsAt(file: string, path: string, text: RegExp): void {
  assert.throws(
    () => loadModelFile(file),
    (e: unknown) => {
      assert.ok(e instanceof CubeError, String(e));
      assert.equal(e.code, 'INVALID_FILE');
      assert.equal(e.where.path, path);
      assert.equal(e.where.file, file);
      assert.match(e.message, text);
      return true;
    },
  );
}

describe('model files', () => {
  test('a missing required key is named', () => {
    const rest: Record<string, unknown> = { ...base };
    delete rest['vocab_size'];
    failsAt(write('missing.json', rest), 'vocab_size', /vocab_size: required key is missing/);
  });

  test('a wrong type is named with what was expected', () => {
    failsAt(
      write('type.json', { ...base, hidden_size: '512' }),
      'hidden_size',
      /hidden_size: expected a positive integer/,
    );
  });

  test('an unknown key is an error that suggests the known one', () => {
    const { hidden_size: h, ...rest } = base;
    failsAt(
      write('typo.json', { ...rest, hidden_sise: h }),
      'hidden_sise',
      /hidden_sise: unknown key \(did you mean "hidden_size"\?\)/,
    );
  });

  test('a bad nested moe key names its full path', () => {
    failsAt(
      write('moe.json', {
        ...base,
        moe: { num_experts: 0, experts_per_token: 1, moe_intermediate_size: 64 },
      }),
      'moe.num_experts',
      /moe\.num_experts: expected a positive integer/,
    );
    failsAt(
      write('moe-typo.json', {
        ...base,
        moe: { num_experts: 4, experts_per_token: 1, moe_intermediate_size: 64, top_k: 2 },
      }),
      'moe.top_k',
      /unknown key/,
    );
  });

  test('descriptive free text without its structured key is refused, naming both keys', () => {
    failsAt(
      write('free.json', { ...base, norm_layout: 'parallel' }),
      'norm_layout',
      /give the structured key "block_layout"/,
    );
    failsAt(
      write('free2.json', { ...base, position_encoding: 'rope (partial 0.25)' }),
      'position_encoding',
      /"positions"/,
    );
  });

  test('structured keys describe what the free text cannot', () => {
    const m = loadModelFile(
      write('structured.json', {
        ...base,
        num_layers: 6,
        norm_layout: 'parallel',
        block_layout: { kind: 'parallel', norms: 1 },
        sliding_window: 64,
        attention_pattern: '2 local : 1 global',
        attention_layer_pattern: ['sliding', 'sliding', 'full'],
      }),
    );
    assert.deepEqual(m.blockLayout, { kind: 'parallel', norms: 1 });
    assert.deepEqual(
      m.layers.map((l) => (l.attention.kind === 'softmax' ? l.attention.span.kind : '')),
      ['sliding', 'sliding', 'full', 'sliding', 'sliding', 'full'],
    );
  });

  test('defaults: kv heads = heads, head_dim = hidden/heads, plain MLP, LayerNorm, untied, id from the file name', () => {
    const m = loadModelFile(write('my-model.json', base));
    assert.equal(m.id, 'my-model');
    assert.equal(m.numKeyValueHeads, 8);
    assert.equal(m.headDim, 64);
    assert.equal(m.gatedMlp, false);
    assert.deepEqual(m.norm, { kind: 'layernorm', bias: true });
    assert.equal(m.tiedEmbeddings, false);
    assert.equal(m.attentionBias, 'none');
    assert.deepEqual(m.blockLayout, { kind: 'pre' });
    assert.equal(m.finalNorm, true);
  });

  test('a null tied_embeddings means unknown and must be decided', () => {
    failsAt(write('null.json', { ...base, tied_embeddings: null }), 'tied_embeddings', /null/);
  });

  test('YAML files are read too, and broken files fail with FILE_UNREADABLE', () => {
    const m = loadModelFile(
      write(
        'm.yaml',
        'hidden_size: 64\nnum_layers: 1\nnum_attention_heads: 4\nintermediate_size: 128\nvocab_size: 10\n',
      ),
    );
    assert.equal(m.hiddenSize, 64);
    assert.throws(
      () => loadModelFile(write('broken.json', '{"hidden_size": ')),
      (e: unknown) => e instanceof CubeError && e.code === 'FILE_UNREADABLE',
    );
  });

  test('resolveModel treats paths and .json/.yaml names as files and anything else as an id', () => {
    assert.equal(looksLikeModelFile('llama-2-7b'), false);
    assert.equal(looksLikeModelFile('m.json'), true);
    assert.equal(looksLikeModelFile('models/m'), true);
    assert.equal(resolveModel('llama-2-7b').id, 'llama-2-7b');
    assert.equal(resolveModel(write('r.yaml', base)).id, 'r');
    assert.throws(
      () => resolveModel('nothere.json'),
      (e: unknown) => e instanceof CubeError && e.code === 'FILE_NOT_FOUND',
    );
  });
});
