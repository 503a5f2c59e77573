// The checkpoint timeline of a job with more than a thousand checkpoints: a node joined
// through the agents' API reports the commits (`POST /agents/{id}/events`, as an agent does)
// to a real control plane, and Chromium draws the job page. Before, every commit was a
// circle of its own and a few hundred of them ran into one smear.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ControlPlane } from '../../src/control/control-plane.ts';
import type { Job } from '../../src/control/model/index.ts';
import { repoRoot } from '../python/launcher.ts';
import { until } from '../support/test-cluster.ts';
import { boxesOf, overlapping } from './boxes.ts';
import { launchChromium, signedInPage } from './browser.ts';
import { ensureWebBundle } from './web-bundle.ts';

const artifacts = join(repoRoot, 'test-artifacts', 'web');
const STEPS = 1200;
const L3_EVERY = 10;

let dataDir: string;
let cp: ControlPlane;
let browser: Browser;
let page: Page;
let jobId: string;
const consoleErrors: string[] = [];

async function call<T>(method: string, path: string, body: unknown, token: string): Promise<T> {
  const response = await fetch(`${cp.url}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

before(async () => {
  ensureWebBundle();
  mkdirSync(artifacts, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), 'cube-e2e-web-ckpt-'));
  // The node never heartbeats: a long timeout keeps it `ready` for the test's length.
  cp = await ControlPlane.start({ dataDir, heartbeatTimeoutMs: 600_000 });
  const joined = await call<{ nodeId: string; credential: string }>(
    'POST',
    '/agents/join',
    {
      joinToken: cp.tokens.joinToken,
      name: 'gpu-0',
      labels: { server: 'srv0' },
      devices: [
        { index: 0, kind: 'nvidia', model: 'H100', memoryBytes: 80 * 2 ** 30, health: 'ok' },
      ],
      hostMemoryBytes: 2 ** 40,
    },
    cp.tokens.joinToken,
  );
  const job = await call<Job>(
    'POST',
    '/jobs',
    {
      name: 'many-checkpoints',
      command: ['true'],
      workingDir: repoRoot,
      ranks: { nodes: 1, devicesPerNode: 1 },
      deviceType: 'nvidia',
      checkpoint: { everySteps: 1, l3Every: L3_EVERY },
      // Nothing runs on the node: long timeouts keep the job placed while commits arrive.
      faults: { heartbeatTimeoutSeconds: 3600, hangTimeoutSeconds: 3600 },
    },
    cp.tokens.apiToken,
  );
  jobId = job.id;
  await until('the job placed on gpu-0', 30_000, async () => {
    const j = await call<Job>('GET', `/jobs/${jobId}`, undefined, cp.tokens.apiToken);
    return j.placement?.some((p) => p.nodeId === joined.nodeId) === true ? true : null;
  });
  // What the node's agent sends as each step commits: L1, then L2, then L3 every tenth step.
  for (let step = 1; step <= STEPS; step += 4) {
    const events = [step, step + 1, step + 2, step + 3].flatMap((s) => [
      { kind: 'checkpoint-committed', jobId, level: 'L1', step: s },
      { kind: 'checkpoint-committed', jobId, level: 'L2', step: s },
      ...(s % L3_EVERY === 0
        ? [{ kind: 'checkpoint-committed', jobId, level: 'L3', step: s }]
        : []),
    ]);
    await call('POST', `/agents/${joined.nodeId}/events`, { events }, joined.credential);
  }
  browser = await launchChromium();
  // A laptop screen.
  page = await signedInPage(
    browser,
    cp.tokens.apiToken,
    { width: 1366, height: 768 },
    consoleErrors,
  );
});

after(async () => {
  await browser?.close();
  await cp?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test('1,200 checkpoints are drawn as bucket marks that never overlap and count every commit', async () => {
  const total = 2 * STEPS + STEPS / L3_EVERY;
  await page.goto(`${cp.url}/jobs/${jobId}`);
  await page.locator(`.ckpt[data-checkpoints="${total}"]`).waitFor({ timeout: 30_000 });
  const expected = { L1: STEPS, L2: STEPS, L3: STEPS / L3_EVERY };
  const all = [];
  for (const [level, commits] of Object.entries(expected)) {
    const row = page.locator(`.ckpt-row[data-level="${level}"]`);
    assert.equal(await row.getAttribute('data-commits'), String(commits), level);
    const marks = await boxesOf(row.locator('.ckpt-mark'));
    // Every commit is in exactly one mark.
    assert.equal(
      marks.reduce((n, m) => n + m.count, 0),
      commits,
      `${level}: the marks' counts add up to its commits`,
    );
    assert.ok(marks.length <= 50, `${level}: ${marks.length} marks`);
    assert.ok(
      marks.every((m) => m.width >= 4 && m.height >= 2),
      `${level}: every mark is big enough to see`,
    );
    assert.deepEqual(overlapping(marks), [], `${level}: marks overlap`);
    const labels = await boxesOf(row.locator('.ckpt-step'));
    assert.ok(labels.length >= 5, `${level}: ${labels.length} step labels`);
    assert.deepEqual(overlapping(labels), [], `${level}: step labels overlap`);
    all.push(...marks, ...labels);
  }
  // Nor does any mark or label touch another row's.
  assert.deepEqual(overlapping(all), []);
  await page
    .locator('[data-testid="ckpt-buckets"]')
    .filter({ hasText: '1,200 commits at L1' })
    .waitFor();
  await page.locator('.ckpt').screenshot({ path: join(artifacts, 'checkpoint-timeline-1200.png') });
  assert.deepEqual(consoleErrors, []);
});
