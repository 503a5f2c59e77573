// The cluster view at 1,024 devices: 128 eight-GPU nodes in 4 super-nodes join a real
// control plane through the agents' API, and Chromium draws them as 4 super-node groups
// (plus the optical switch), not 1,024 graph nodes. The screenshot is in test-artifacts/web/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { repoRoot } from '../python/launcher.ts';
import { launchChromium, signedInPage } from './browser.ts';
import { ensureWebBundle } from './web-bundle.ts';

const artifacts = join(repoRoot, 'test-artifacts', 'web');
const SUPER_NODES = 4;
const SERVERS_PER_SUPER_NODE = 32;
const GPUS = 8;

let dataDir: string;
let cp: ControlPlane;
let browser: Browser;
let page: Page;
const consoleErrors: string[] = [];

async function post(path: string, body: unknown, token?: string): Promise<unknown> {
  const response = await fetch(`${cp.url}/api/v1${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `POST ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}

before(async () => {
  ensureWebBundle();
  mkdirSync(artifacts, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), 'cube-e2e-web-scale-'));
  // These nodes never heartbeat: a long timeout keeps them `ready` for the test's length.
  cp = await ControlPlane.start({ dataDir, heartbeatTimeoutMs: 600_000 });
  for (let sn = 0; sn < SUPER_NODES; sn += 1)
    for (let s = 0; s < SERVERS_PER_SUPER_NODE; s += 1) {
      const i = sn * SERVERS_PER_SUPER_NODE + s;
      const spare = s === SERVERS_PER_SUPER_NODE - 1;
      await post('/agents/join', {
        joinToken: cp.tokens.joinToken,
        name: `gpu-${String(i).padStart(3, '0')}`,
        // The super-nodes sit behind one optical circuit switch (the `ocs` label says so).
        labels: { superNode: `sn${sn}`, server: `srv${String(i).padStart(3, '0')}`, ocs: 'ocs0' },
        devices: Array.from({ length: GPUS }, (_, index) => ({
          index,
          kind: 'nvidia',
          model: 'BR166',
          memoryBytes: 64 * 2 ** 30,
          // One failed and one degraded device somewhere in the cluster.
          health: i === 5 && index === 3 ? 'failed' : i === 70 && index === 0 ? 'degraded' : 'ok',
        })),
        hostMemoryBytes: 2 ** 40,
        role: spare ? 'spare' : 'worker',
      });
    }
  for (const name of ['gpu-010', 'gpu-100'])
    await post(`/nodes/${name}/cordon`, {}, cp.tokens.apiToken);
  browser = await launchChromium();
  page = await signedInPage(
    browser,
    cp.tokens.apiToken,
    { width: 1440, height: 900 },
    consoleErrors,
  );
});

after(async () => {
  await browser?.close();
  await cp?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test('1,024 devices are drawn as super-node groups with a cell per device, spares and cordons marked', async () => {
  await page.goto(`${cp.url}/`);
  await page.locator('.topology [data-node="gpu-127"]').waitFor({ timeout: 30_000 });
  // 4 super-nodes and the optical switch: the graph stays small whatever the device count.
  assert.equal(await page.locator('.react-flow__node').count(), SUPER_NODES + 1);
  // Edges are drawn once xyflow has measured the handles they join, a frame after the nodes.
  await page
    .locator('.react-flow__edge')
    .nth(SUPER_NODES - 1)
    .waitFor({ timeout: 30_000 });
  assert.equal(await page.locator('.react-flow__edge').count(), SUPER_NODES);
  assert.equal(await page.locator('.topo-fabric[data-ocs="ocs0"]').count(), 1);
  assert.match(
    (await page.locator('.topo-fabric').textContent()) ?? '',
    new RegExp(`links ${SUPER_NODES} super-nodes`),
  );
  assert.equal(
    await page.locator('.react-flow .cell').count(),
    SUPER_NODES * SERVERS_PER_SUPER_NODE * GPUS,
  );
  assert.equal(await page.locator('.react-flow .cell.health-failed').count(), 1);
  assert.equal(await page.locator('.react-flow .cell.health-degraded').count(), 1);
  assert.equal(await page.locator('.react-flow .topo-node.node-spare').count(), SUPER_NODES);
  assert.equal(await page.locator('.react-flow .topo-node.node-cordoned').count(), 2);
  assert.equal(await page.locator('[data-testid="node-table"] tbody tr').count(), 128);
  await page.screenshot({ path: join(artifacts, 'cluster-1024.png') });
  assert.deepEqual(consoleErrors, []);
});

test('a node cordoned through the API is marked live, from the event stream', async () => {
  await page.locator('.live-live').waitFor({ timeout: 30_000 });
  await post('/nodes/gpu-050/cordon', {}, cp.tokens.apiToken);
  // `visible`: the redrawn topology shows it, not just the DOM.
  await page
    .locator('.react-flow [data-node="gpu-050"].node-cordoned')
    .waitFor({ state: 'visible', timeout: 30_000 });
  assert.equal(await page.locator('.react-flow .topo-node.node-cordoned').count(), 3);
  assert.ok(await page.locator('.react-flow [data-node="gpu-127"]').isVisible());
  assert.deepEqual(consoleErrors, []);
});

test('an empty job list says how to submit a job, and an unknown job shows an error', async () => {
  await page.getByRole('link', { name: 'Jobs' }).click();
  await page.locator('.state-empty').filter({ hasText: 'cube submit' }).waitFor();
  await page.goto(`${cp.url}/jobs/j-nosuchjob`);
  await page.getByRole('alert').filter({ hasText: 'no job "j-nosuchjob"' }).waitFor();
  // The browser's own console line for the 404 is expected here; nothing else is.
  assert.deepEqual(
    consoleErrors.filter((e) => !/status of 404/.test(e)),
    [],
  );
});
