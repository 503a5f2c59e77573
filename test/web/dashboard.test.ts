// The dashboard end to end: Debian's Chromium (through playwright-core) against a real
// control plane serving the production bundle, agent processes standing in for nodes and a
// real PyTorch job training. Screenshots go to test-artifacts/web/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { ControlPlane } from '../../src/control/control-plane.ts';
import type { Job } from '../../src/control/model/index.ts';
import { python, repoRoot, tinyModelArgs } from '../python/launcher.ts';
import { startTestCluster, until, type TestCluster } from '../support/test-cluster.ts';
import { boxesOf, overlapping } from './boxes.ts';
import { launchChromium } from './browser.ts';
import { ensureWebBundle } from './web-bundle.ts';
import { userApi } from '../support/api-calls.ts';

const artifacts = join(repoRoot, 'test-artifacts', 'web');

let cluster: TestCluster | undefined;
let cp: ControlPlane;
const api = userApi(() => cp);
let browser: Browser;
let page: Page;
let jobId: string;
/** Console errors and uncaught page errors, with the page they happened on. */
const consoleErrors: string[] = [];

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

/** A number the page exposes as a data attribute (chart points, markers). */
async function attribute(selector: string, name: string): Promise<number> {
  const value = await page.locator(selector).first().getAttribute(name, { timeout: 30_000 });
  return Number(value ?? 'NaN');
}

/** Every bar label of the chart is on screen, and no two of them overlap. */
async function assertLabelsApart(chart: string): Promise<void> {
  const labels = await boxesOf(page.locator(`${chart} .bar-label`));
  assert.equal(labels.length, await attribute(chart, 'data-points'));
  assert.ok(labels.every((l) => l.width > 0 && l.height > 0 && l.text.length > 0));
  assert.deepEqual(overlapping(labels), [], `${chart}: bar labels overlap`);
}

before(async () => {
  ensureWebBundle();
  mkdirSync(artifacts, { recursive: true });
  cluster = await startTestCluster('web', {
    nodes: 2,
    devicesPerNode: 2,
    spares: 1,
    intervalMs: 200,
  });
  ({ cp } = cluster);
  const job = await api<Job>('POST', '/jobs', {
    name: 'web-e2e',
    command: [python, 'examples/gpt/train.py', '--steps', '3000', ...tinyModelArgs, '--seed', '5'],
    workingDir: repoRoot,
    env: { OMP_NUM_THREADS: '1', PYTHONDONTWRITEBYTECODE: '1' },
    ranks: { nodes: 2, devicesPerNode: 2 },
    deviceType: 'cpu',
    checkpoint: { everySteps: 10, l3Every: 2 },
    restart: { maxRestarts: 3, backoffSeconds: 0.5 },
    faults: { heartbeatTimeoutSeconds: 3, hangTimeoutSeconds: 120 },
  });
  jobId = job.id;
  browser = await launchChromium();
  // A laptop screen.
  page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(`${page.url()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => consoleErrors.push(`${page.url()}: ${error.message}`));
});

after(async () => {
  await browser?.close();
  if (jobId !== undefined) await api('POST', `/jobs/${jobId}/cancel`).catch(() => undefined);
  await cluster?.stop();
});

test('the login page refuses a bad token and signs in with a good one', async () => {
  await page.goto(`${cp.url}/`);
  await page.getByLabel('API token').fill('not-a-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'refused' }).waitFor({ timeout: 10_000 });
  await shot('login-refused');
  // The refused token's 401 is the browser's own console line, expected here.
  consoleErrors.length = 0;
  await page.getByLabel('API token').fill(cp.tokens.apiToken);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('[data-page="cluster"]').waitFor({ timeout: 60_000 });
});

test('the cluster view draws every node and device, with the spare marked', async () => {
  await page.goto(`${cp.url}/cluster`);
  await page.locator('.topology [data-node="spare-0"]').waitFor({ timeout: 15_000 });
  for (const name of ['node-0', 'node-1', 'spare-0'])
    assert.equal(await page.locator(`.topology [data-node="${name}"]`).count(), 1, name);
  assert.equal(await page.locator('.react-flow .cell.health-ok').count(), 6);
  assert.ok(await page.locator('.topology [data-node="spare-0"].node-spare').isVisible());
  assert.equal(await page.locator('[data-testid="node-table"] tbody tr').count(), 3);
  // Two super-nodes by their labels, but no node says it sits behind an optical switch (as
  // on any `cube up` cluster): none is drawn.
  assert.equal(await page.locator('.topo-supernode').count(), 2);
  assert.equal(await page.locator('.topo-fabric').count(), 0);
  await page.locator('.topology [data-node="node-0"]').click();
  await page
    .locator('[data-testid="node-detail"]')
    .getByRole('heading', { name: /node-0/ })
    .waitFor();
  await shot('cluster');
});

test('the jobs list shows the running job with its progress and throughput', async () => {
  await page.goto(`${cp.url}/jobs`);
  const row = page.locator(`[data-job="${jobId}"]`);
  await row.locator('.badge-running').waitFor({ timeout: 90_000 });
  await until('a step in the jobs list', 30_000, async () => {
    const text = (await row.locator('.progress').textContent()) ?? '';
    return /\d+ \/ 3000/.test(text) ? true : null;
  });
  await shot('jobs');
});

test('the loss curve gains points while the job trains', async () => {
  await page.getByRole('link', { name: 'web-e2e' }).click();
  await page.locator('[data-page="job"]').waitFor();
  const chart = 'figure[aria-label="loss curve"]';
  const first = await until('the loss curve', 60_000, async () => {
    const n = await attribute(chart, 'data-points');
    return n >= 2 ? n : null;
  });
  const later = await until('more points on the loss curve', 60_000, async () => {
    const n = await attribute(chart, 'data-points');
    return n > first ? n : null;
  });
  assert.ok(later > first);
  await page.locator('[data-testid="rank-log"]').filter({ hasText: 'step' }).waitFor({
    timeout: 30_000,
  });
  await page.locator('.ckpt circle').first().waitFor({ timeout: 60_000 });
  assert.ok((await page.locator('.react-flow .cell-placed').count()) === 4);
  await shot('job-training');
});

test('a fault injected through the API appears on the event timeline and on the curve', async () => {
  const job = await api<Job>('GET', `/jobs/${jobId}`);
  const victim = job.placement?.find((p) => p.rank === 1);
  assert.ok(victim);
  await api('POST', `/nodes/${victim.nodeId}/faults`, { kind: 'kill-rank', jobId, rank: 1 });
  await page
    .locator('[data-testid="event-timeline"] li[data-kind="fault-detected"]')
    .first()
    .waitFor({ timeout: 60_000 });
  await until('the fault on the loss curve', 30_000, async () =>
    (await page.locator('figure[aria-label="loss curve"] .marker-fault').count()) > 0 ? true : null,
  );
  assert.ok((await attribute('figure[aria-label="loss curve"]', 'data-markers')) >= 1);
  assert.ok((await attribute('figure[aria-label="throughput"]', 'data-markers')) >= 1);
  // The job recovers by itself; the recovery is marked too.
  await page
    .locator('figure[aria-label="loss curve"] .marker-recovery')
    .first()
    .waitFor({ timeout: 90_000 });
  // The placement follows the restart: four ranks drawn, wherever they run now.
  await until('the new placement drawn', 30_000, async () =>
    (await page.locator('.react-flow .cell-placed').count()) === 4 ? true : null,
  );
  assert.ok(await page.locator('.react-flow .cell-placed').first().isVisible());
  // No node was lost: the explanation of the new attempt says it kept its nodes.
  await page
    .locator('[data-testid="placement-explanation"][data-attempt="1"] li.explanation-current')
    .filter({ hasText: 'restarts on the nodes of attempt 0' })
    .waitFor({ timeout: 30_000 });
  await shot('job-after-fault');
});

test('a planner query renders its ranked plans and the breakdown charts', async () => {
  await page.getByRole('link', { name: 'Planner' }).click();
  await page.locator('[data-page="planner"]').waitFor();
  await page.getByLabel('model').selectOption('llama-3.1-8b');
  await page.getByLabel('accelerator').selectOption('h100-sxm');
  await page.getByLabel('GPUs').fill('16');
  await page.getByRole('button', { name: 'Plan' }).click();
  await page.locator('[data-testid="plan-table"] tbody tr').first().waitFor({ timeout: 90_000 });
  assert.ok((await page.locator('[data-testid="plan-table"] tbody tr').count()) >= 1);
  assert.ok((await attribute('figure[aria-label="memory breakdown"]', 'data-points')) >= 3);
  assert.ok((await attribute('figure[aria-label="step-time breakdown"]', 'data-points')) >= 1);
  await assertLabelsApart('figure[aria-label="memory breakdown"]');
  await shot('planner');
});

test('a simulation renders goodput over time, lost time by category and the policies compared', async () => {
  await page.getByRole('link', { name: 'Simulator' }).click();
  await page.locator('[data-page="simulator"]').waitFor();
  await page.getByLabel('model').selectOption('llama-3.1-8b');
  await page.getByLabel('GPUs').fill('64');
  await page.getByLabel('days').fill('7');
  await page.getByLabel('trials').fill('5');
  await page.getByRole('button', { name: 'Simulate' }).click();
  await page.locator('[data-testid="policy-table"] tbody tr').first().waitFor({ timeout: 90_000 });
  assert.equal(await page.locator('[data-testid="policy-table"] tbody tr').count(), 2);
  assert.ok((await attribute('figure[aria-label="goodput over time"]', 'data-points')) >= 10);
  assert.ok((await attribute('figure[aria-label="time lost by category"]', 'data-points')) >= 5);
  await assertLabelsApart('figure[aria-label="time lost by category"]');
  await shot('simulator');
});

test('no page logged a console error', () => {
  assert.deepEqual(consoleErrors, []);
});
