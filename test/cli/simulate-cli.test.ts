import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { defaultFailureModel } from '../../src/sim/index.ts';

const root = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'cube-simulate-cli-'));
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
      { cwd: root, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

interface PolicyJson {
  readonly policy: string;
  readonly goodput: { readonly mean: number };
  readonly interruptions: { readonly byCause: Record<string, number> };
}

interface SimJson {
  readonly model: string;
  readonly gpus: number;
  readonly days: number;
  readonly trials: number;
  readonly seed: number;
  readonly goodput: { readonly mean: number; readonly p5: number; readonly p95: number };
  readonly interruptions: { readonly byCause: Record<string, number> };
  readonly humanInterventions: object;
  readonly lostHours: object;
  readonly pNoFault: object;
  readonly pNoHuman: object;
  readonly stepTimeS: number;
  readonly stepTimeSource: string;
  readonly plan: { readonly stepTimeS: number } | null;
  readonly policies: readonly PolicyJson[];
}

const small = ['--model', 'llama-3-8b', '--accelerator', 'h100-sxm', '--gpus', '64'];

describe('cube simulate', () => {
  test('--json follows the contract: exactly its keys, every cause of the model, pNoFault for 1, 5, 30 days', async () => {
    const r = await cube(
      'simulate',
      ...small,
      '--days',
      '3',
      '--trials',
      '5',
      '--seed',
      '7',
      '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as SimJson;
    assert.deepEqual(Object.keys(out).slice(0, 11), [
      'model',
      'gpus',
      'days',
      'trials',
      'goodput',
      'interruptions',
      'humanInterventions',
      'lostHours',
      'pNoFault',
      'pNoHuman',
      'longestFaultFreeHours',
    ]);
    assert.equal(out.model, 'llama-3-8b');
    assert.equal(out.gpus, 64);
    assert.equal(out.days, 3);
    assert.equal(out.trials, 5);
    assert.deepEqual(Object.keys(out.goodput), ['mean', 'p5', 'p95']);
    assert.deepEqual(Object.keys(out.interruptions), ['mean', 'p2_5', 'p97_5', 'byCause']);
    assert.deepEqual(
      Object.keys(out.interruptions.byCause).sort(),
      defaultFailureModel.classes.map((c) => c.cause).sort(),
    );
    assert.deepEqual(Object.keys(out.humanInterventions), ['mean']);
    assert.deepEqual(Object.keys(out.lostHours), [
      'detection',
      'restart',
      'restore',
      'recompute',
      'checkpointStall',
    ]);
    assert.deepEqual(Object.keys(out.pNoFault), ['1', '5', '30']);
    assert.deepEqual(Object.keys(out.pNoHuman), ['1', '5', '30']);
    assert.ok(out.goodput.mean > 0.5 && out.goodput.mean <= 1);
    assert.ok(out.goodput.p5 <= out.goodput.mean && out.goodput.mean <= out.goodput.p95);
    assert.equal(out.stepTimeSource, 'planner');
    assert.equal(out.stepTimeS, out.plan?.stepTimeS);
  });

  test('the same seed prints the same result; --step-time replaces the planner step time', async () => {
    const args = [
      'simulate',
      ...small,
      '--days',
      '2',
      '--trials',
      '4',
      '--step-time',
      '3',
      '--json',
    ];
    const [a, b] = await Promise.all([
      cube(...args, '--seed', '11'),
      cube(...args, '--seed', '11'),
    ]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout, b.stdout);
    const out = JSON.parse(a.stdout) as SimJson;
    assert.equal(out.stepTimeS, 3);
    assert.equal(out.stepTimeSource, '--step-time');
    assert.equal(out.seed, 11);
  });

  test('--compare simulates every policy of the file side by side on the same failures', async () => {
    const r = await cube(
      'simulate',
      ...small,
      '--days',
      '2',
      '--trials',
      '4',
      '--compare',
      'examples/sim/policies.yaml',
      '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as SimJson;
    const names = out.policies.map((p) => p.policy);
    assert.deepEqual(names.slice(0, 2), ['sync-storage-only', 'three-level-async']);
    assert.equal(out.goodput.mean, out.policies[0]?.goodput.mean);
    // Common random numbers: every policy meets the same unplanned failures.
    const sync = out.policies[0];
    const async = out.policies[1];
    assert.equal(
      sync?.interruptions.byCause['faulty-gpu'],
      async?.interruptions.byCause['faulty-gpu'],
    );
  });

  test('prints a summary, the time lost and a progress plot, and writes the SVG', async () => {
    const svg = join(dir, 'progress.svg');
    const r = await cube('simulate', ...small, '--days', '2', '--trials', '3', '--plot', svg);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /goodput/);
    assert.match(r.stdout, /time lost, hours per run/);
    assert.match(r.stdout, /recompute/);
    assert.match(r.stdout, /progress over time/);
    assert.match(r.stdout, /\. ideal/);
    assert.ok(existsSync(svg));
    assert.match(readFileSync(svg, 'utf8'), /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  });

  test('--days must be above 0', async () => {
    for (const days of ['0', '-2', 'soon']) {
      const r = await cube('simulate', ...small, '--days', days, '--json');
      assert.equal(r.code, 2, `--days ${days}`);
      assert.match(r.stderr, /BAD_FLAG/);
      assert.match(r.stderr, /--days/);
    }
    const missing = await cube('simulate', ...small);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--days is required/);
  });

  test('an unknown model id is UNKNOWN_ID with the nearest names', async () => {
    const r = await cube(
      'simulate',
      '--model',
      'llama3-8b',
      '--accelerator',
      'h100-sxm',
      '--gpus',
      '8',
      '--days',
      '1',
    );
    assert.equal(r.code, 2);
    assert.match(r.stderr, /UNKNOWN_ID/);
    assert.match(r.stderr, /llama-3-8b/);
  });

  test('a bad failure-model file names the file and the field', async () => {
    const file = join(dir, 'bad-model.yaml');
    writeFileSync(
      file,
      'name: bad\ndetection: { crashS: 5, heartbeatTimeoutS: 15, hangTimeoutS: 120, probeIntervalS: 30, silentCheckIntervalS: 600 }\nclasses:\n  - { cause: gpu, scope: gpu, detection: crash, mtbfHours: zero }\n',
    );
    const r = await cube('simulate', ...small, '--days', '1', '--failure-model', file);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /INVALID_FILE/);
    assert.match(r.stderr, /classes\[0\]\.mtbfHours/);
    assert.ok(r.stderr.includes(file));
  });

  test('--plot accepts only SVG', async () => {
    const r = await cube('simulate', ...small, '--days', '1', '--plot', join(dir, 'p.png'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /SVG/);
  });
});
