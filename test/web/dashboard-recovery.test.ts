// The dashboard on a cluster as `cube up` makes it (two workers and a hot spare, each an
// agent process, labelled into two super-nodes with no optical switch), against a real
// control plane with a 5 s heartbeat timeout: what the cluster view shows while an agent is
// stopped (SIGSTOP), and what a job's page shows after a node is lost and a spare takes its
// place. Screenshots go to test-artifacts/web/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ControlPlane } from '../../src/control/control-plane.ts';
import type { Job } from '../../src/control/model/index.ts';
import {
  startEmbeddedAgents,
  stopEmbeddedAgents,
  type EmbeddedAgent,
} from '../../src/cli/embedded-cluster.ts';
import { python, repoRoot, tinyModelArgs } from '../python/launcher.ts';
import { until } from '../support/test-cluster.ts';
import { launchChromium, signedInPage } from './browser.ts';
import { ensureWebBundle } from './web-bundle.ts';
import { userApi } from '../support/api-calls.ts';

const artifacts = join(repoRoot, 'test-artifacts', 'web');
const HEARTBEAT_MS = 500;
const TIMEOUT_MS = 5000;

let dataDir: string;
let shmRoot: string;
let cp: ControlPlane;
const api = userApi(() => cp);
let agents: EmbeddedAgent[] = [];
let browser: Browser;
let page: Page;
let jobId: string | undefined;
const consoleErrors: string[] = [];

function agent(name: string): EmbeddedAgent {
  const found = agents.find((a) => a.name === name);
  assert.ok(found?.pid != null, `no agent process for ${name}`);
  return found;
}

/** A node's row in the cluster view's node list, as shown now. */
async function row(name: string): Promise<{ shown: string; silentMs: number; text: string }> {
  const tr = page.locator(`[data-testid="node-table"] tr[data-node="${name}"]`);
  const [shown, silent, text] = await Promise.all([
    tr.getAttribute('data-shown-state', { timeout: 5000 }),
    tr.getAttribute('data-silent-ms', { timeout: 5000 }),
    tr.textContent({ timeout: 5000 }),
  ]);
  return { shown: shown ?? '', silentMs: Number(silent ?? 'NaN'), text: text ?? '' };
}

before(async () => {
  ensureWebBundle();
  mkdirSync(artifacts, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), 'cube-e2e-web-recovery-'));
  shmRoot = mkdtempSync(join('/dev/shm', 'cube-e2e-web-recovery-'));
  cp = await ControlPlane.start({
    dataDir,
    heartbeatTimeoutMs: TIMEOUT_MS,
    heartbeatIntervalMs: HEARTBEAT_MS,
    tickMs: 200,
    allowFaultInjection: true,
  });
  // What `cube up --nodes 2 --spares 1` starts.
  agents = startEmbeddedAgents({
    server: cp.url,
    joinToken: cp.tokens.joinToken,
    dataDir: join(dataDir, 'nodes'),
    shmRoot,
    nodes: 2,
    devicesPerNode: 1,
    spares: 1,
    heartbeatMs: HEARTBEAT_MS,
  });
  await until('every node to join', 90_000, async () =>
    (await cp.store.listNodes()).filter((n) => n.state === 'ready').length === 3 ? true : null,
  );
  browser = await launchChromium();
  page = await signedInPage(
    browser,
    cp.tokens.apiToken,
    { width: 1366, height: 768 },
    consoleErrors,
    {
      withUrl: true,
    },
  );
});

after(async () => {
  await browser?.close();
  // A stopped agent must run again to stop (the node the fault killed has exited already).
  for (const a of agents)
    if (a.pid !== null)
      try {
        process.kill(a.pid, 'SIGCONT');
      } catch {
        // gone
      }
  if (jobId !== undefined) await api('POST', `/jobs/${jobId}/cancel`).catch(() => undefined);
  await stopEmbeddedAgents(agents, shmRoot);
  await cp?.stop();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(shmRoot, { recursive: true, force: true });
});

test('a local cluster with super-node labels and no optical switch is drawn without one', async () => {
  await page.goto(`${cp.url}/`);
  await page.locator('.topology [data-node="spare-0"]').waitFor({ timeout: 30_000 });
  assert.equal(await page.locator('.topo-supernode').count(), 2);
  assert.equal(await page.locator('.topo-fabric').count(), 0);
  assert.equal(await page.locator('.react-flow__edge').count(), 0);
  assert.doesNotMatch((await page.locator('.topology').textContent()) ?? '', /optical|switch/i);
  await page.screenshot({ path: join(artifacts, 'cluster-local-no-ocs.png') });
});

test('healthy nodes never look silent for longer than the heartbeat timeout', async () => {
  // The stored heartbeat time is written every 10 s: shown as an age, it read "10.3 s ago"
  // for a healthy node under a 5 s timeout. Watch for longer than that batch interval.
  const deadline = Date.now() + 12_000;
  let samples = 0;
  while (Date.now() < deadline) {
    for (const name of ['node-0', 'node-1', 'spare-0']) {
      const r = await row(name);
      assert.notEqual(r.shown, 'down', `${name} went down`);
      assert.ok(
        r.silentMs < TIMEOUT_MS,
        `${name} shown ${r.shown}, silent ${r.silentMs} ms: "${r.text}"`,
      );
      samples += 1;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(samples > 30);
});

test('a stopped agent is shown late, with its silence, then down; never ready past its timeout', async () => {
  const spare = agent('spare-0');
  const seen: { shown: string; silentMs: number }[] = [];
  // Samples in which the topology flagged it too.
  let flagged = 0;
  process.kill(spare.pid ?? 0, 'SIGSTOP');
  try {
    await until(
      'spare-0 shown down',
      TIMEOUT_MS + 20_000,
      async () => {
        const r = await row('spare-0');
        seen.push(r);
        assert.ok(
          !(r.shown === 'ready' && r.silentMs > TIMEOUT_MS),
          `shown ready while silent for ${r.silentMs} ms (timeout ${TIMEOUT_MS} ms): "${r.text}"`,
        );
        if (r.shown === 'late') {
          assert.match(r.text, /late/);
          assert.match(r.text, /ago \(timeout 5 s\)/);
          if ((await page.locator('.react-flow [data-node="spare-0"].node-late').count()) > 0)
            flagged += 1;
          if (!seen.some((s) => s.shown === 'late' && s !== r))
            await page.screenshot({
              path: join(artifacts, 'cluster-node-late.png'),
              fullPage: true,
            });
        }
        return r.shown === 'down' ? r : null;
      },
      { intervalMs: 100 },
    );
  } finally {
    process.kill(spare.pid ?? 0, 'SIGCONT');
  }
  const late = seen.filter((s) => s.shown === 'late');
  assert.ok(late.length > 0, `never shown late: ${JSON.stringify(seen.map((s) => s.shown))}`);
  assert.ok(flagged > 0, 'the topology never flagged it late');
  // Late only once silent for longer than 2.5 heartbeat intervals, as the server judges it.
  assert.ok(late.every((s) => s.silentMs > 2.5 * HEARTBEAT_MS));
  const firstDown = seen.findIndex((s) => s.shown === 'down');
  assert.ok(seen.findIndex((s) => s.shown === 'late') < firstDown);
  assert.match(
    await page.locator('.tile').filter({ hasText: 'down / late' }).innerText(),
    /1 \/ 0/,
  );
  // Heartbeats resume: the node is ready again.
  await until('spare-0 ready again', 30_000, async () =>
    (await row('spare-0')).shown === 'ready' ? true : null,
  );
});

test('after a node is lost, the events list its node-down by default and the placement explains the new attempt', async () => {
  const job = await api<Job>('POST', '/jobs', {
    name: 'web-recovery',
    command: [python, 'examples/gpt/train.py', '--steps', '3000', ...tinyModelArgs, '--seed', '7'],
    workingDir: repoRoot,
    env: { OMP_NUM_THREADS: '1', PYTHONDONTWRITEBYTECODE: '1' },
    ranks: { nodes: 2, devicesPerNode: 1 },
    deviceType: 'cpu',
    checkpoint: { everySteps: 10, l3Every: 2 },
    restart: { maxRestarts: 3, backoffSeconds: 0.5 },
    faults: { heartbeatTimeoutSeconds: 3, hangTimeoutSeconds: 120 },
  });
  jobId = job.id;
  await until('the job running', 120_000, async () =>
    (await api<Job>('GET', `/jobs/${job.id}`)).state === 'running' ? true : null,
  );
  await page.goto(`${cp.url}/jobs/${job.id}`);
  await page.locator('[data-testid="placement-explanation"][data-attempt="0"]').waitFor({
    timeout: 30_000,
  });
  const placed = await api<Job>('GET', `/jobs/${job.id}`);
  const victimId = placed.placement?.find((p) => p.rank === 1)?.nodeId;
  assert.ok(victimId !== undefined);
  const victim = (await cp.store.getNode(victimId))?.name;
  assert.ok(victim !== undefined);
  await api('POST', `/nodes/${victimId}/faults`, { kind: 'kill-node' });

  // The node going down is in the default list: the checkbox for rank and checkpoint events
  // stays off.
  const timeline = page.locator('[data-testid="event-timeline"]');
  await timeline.locator('li[data-kind="node-down"]').first().waitFor({ timeout: 60_000 });
  assert.equal(await page.getByRole('checkbox').isChecked(), false);
  assert.match(
    (await timeline.locator('li[data-kind="node-down"]').first().textContent()) ?? '',
    new RegExp(`${victim}.*no heartbeat`),
  );

  // The placement describes attempt 1: which node took the lost node's rank.
  const explanation = page.locator('[data-testid="placement-explanation"][data-attempt="1"]');
  await explanation.waitFor({ timeout: 120_000 });
  await page.getByRole('heading', { name: 'Placement of attempt 1' }).waitFor();
  const current = (await explanation.locator('li.explanation-current').allTextContents()).join(
    '\n',
  );
  assert.match(
    current,
    new RegExp(`attempt 1: spare-0 \\(hot spare.*\\) takes rank 1 of ${victim}`),
  );
  // Attempt 0's reasoning is kept below it, marked as such.
  assert.ok((await explanation.locator('li.explanation-past').count()) > 0);
  const fresh = await api<Job>('GET', `/jobs/${job.id}`);
  assert.match(fresh.placementExplanation[0] ?? '', /^attempt 1: spare-0 /);
  await until('rank 1 drawn on spare-0', 30_000, async () =>
    (await page.locator('.react-flow [data-node="spare-0"] .cell-placed').count()) === 1
      ? true
      : null,
  );
  await page.screenshot({ path: join(artifacts, 'job-after-node-loss.png'), fullPage: true });
  assert.deepEqual(consoleErrors, []);
});
