import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

const root = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'cube-zoo-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

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

const ids = (
  JSON.parse(readFileSync(join(root, 'src/zoo/data/models.json'), 'utf8')) as { id: string }[]
).map((m) => m.id);

describe('cube zoo', () => {
  test('--json prints the 88 models with exactly the contract keys', async () => {
    const r = await cube('zoo', '--json');
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as Record<string, unknown>[];
    assert.equal(rows.length, 88);
    assert.deepEqual(
      rows.map((row) => row['id']),
      ids,
    );
    const keys = [
      'id',
      'family',
      'params',
      'activeParams',
      'layers',
      'hidden',
      'heads',
      'kvHeads',
      'ffn',
      'vocab',
      'experts',
      'expertsPerToken',
    ];
    for (const row of rows) {
      assert.deepEqual(Object.keys(row), keys);
      assert.ok(Number.isInteger(row['params']) && Number.isInteger(row['activeParams']));
    }
    const llama = rows.find((row) => row['id'] === 'llama-2-7b');
    assert.equal(llama?.['params'], 6_738_415_616);
    assert.equal(llama?.['experts'], null);
    const mixtral = rows.find((row) => row['id'] === 'mixtral-8x7b');
    assert.deepEqual(
      [mixtral?.['params'], mixtral?.['experts'], mixtral?.['expertsPerToken'], mixtral?.['ffn']],
      [46_702_792_704, 8, 2, 14336],
    );
  });

  test('without --json prints a table', async () => {
    const r = await cube('zoo');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^id\s+family\s+params/);
    assert.match(r.stdout, /deepseek-v3\s+DeepSeek-V3\s+671\.0B\s+37\.55B/);
  });

  test('show <id> --json gives the breakdown, FLOPs, memory and the source', async () => {
    const r = await cube('zoo', 'show', 'llama-2-7b', '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as {
      params: { total: number; embedding: number; head: number };
      flopsPerToken: { seqLen: number }[];
      stateBytes: { recipe: string; totalBytes: number }[];
      model: { source: string };
    };
    assert.equal(report.params.total, 6_738_415_616);
    assert.equal(report.params.head, 131_072_000);
    assert.ok(report.flopsPerToken.length >= 3);
    assert.equal(
      report.stateBytes.find((s) => s.recipe === 'bf16-mixed')?.totalBytes,
      16 * 6_738_415_616,
    );
    assert.match(report.model.source, /litgpt/);
  });

  test('show prints text for a model file too, and an unknown id exits 2 with a suggestion', async () => {
    const file = join(dir, 'm.json');
    writeFileSync(
      file,
      JSON.stringify({
        hidden_size: 256,
        num_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 1024,
        vocab_size: 500,
      }),
    );
    const [shown, unknown] = await Promise.all([
      cube('zoo', 'show', '--file', file),
      cube('zoo', 'show', 'llama-2-7'),
    ]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /parameters:/);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /UNKNOWN_ID/);
    assert.match(unknown.stderr, /did you mean "llama-2-7b"/);
  });

  test('a bad model file exits 2 and names the key', async () => {
    const typo = join(dir, 'typo.json');
    writeFileSync(
      typo,
      JSON.stringify({
        hidden_sise: 256,
        num_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 1024,
        vocab_size: 500,
      }),
    );
    const moe = join(dir, 'moe.json');
    writeFileSync(
      moe,
      JSON.stringify({
        hidden_size: 256,
        num_layers: 2,
        num_attention_heads: 4,
        vocab_size: 500,
        moe: { num_experts: -1, experts_per_token: 1, moe_intermediate_size: 64 },
      }),
    );
    const [a, b] = await Promise.all([
      cube('zoo', 'show', '--file', typo),
      cube('zoo', 'show', moe, '--json'),
    ]);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /INVALID_FILE/);
    assert.match(a.stderr, /hidden_sise: unknown key/);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /moe\.num_experts: expected a positive integer/);
  });
});
