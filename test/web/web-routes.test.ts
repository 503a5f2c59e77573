// The control plane's routes for the dashboard, over real HTTP on a real control plane (and a
// SQLite store): the curve series and its cursor, every job's latest point, the bundle served
// with its single-page fallback, and the planner and simulator endpoints with their limits.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fastify, type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { validateJobSpec } from '../../src/control/model/index.ts';
import { openSqliteStore, type StateStore } from '../../src/control/store/index.ts';
import { ComputeWorker } from '../../src/control/server/compute-pool.ts';
import { registerWebRoutes, seriesOf } from '../../src/control/server/web-routes.ts';
import { defaultCluster } from '../../src/hardware/index.ts';
import { planJob } from '../../src/plan/index.ts';
import { getModel } from '../../src/zoo/index.ts';
import { until } from '../support/test-cluster.ts';

let dataDir: string;
let cp: ControlPlane;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'cube-web-routes-'));
  cp = await ControlPlane.start({ dataDir, heartbeatTimeoutMs: 600_000 });
});

after(async () => {
  await cp.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function call(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
  const response = await fetch(`${cp.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${cp.tokens.apiToken}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON (the dashboard's HTML)
  }
  return { status: response.status, json, text };
}

/** A bare Fastify app with the Zod compilers the control plane's app sets. */
function bareApp(): FastifyInstance {
  const app = fastify();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  return app;
}

function spec(): ReturnType<typeof validateJobSpec> {
  return validateJobSpec({
    name: 'series',
    command: ['/bin/true'],
    ranks: { nodes: 1, devicesPerNode: 2 },
    deviceType: 'cpu',
  });
}

test('progress combines per step: loss averaged over ranks, tokens/s summed, each rank once', () => {
  const base = { jobId: 'j-1', attempt: 0, at: 1000 };
  const points = seriesOf([
    { ...base, rank: 0, step: 1, loss: 2, tokensPerS: 100 },
    { ...base, rank: 1, step: 1, loss: 4, tokensPerS: 300, at: 1500 },
    { ...base, rank: 1, step: 1, loss: 9, tokensPerS: 900 },
    { ...base, rank: 0, step: 2, loss: null, tokensPerS: null },
    { ...base, attempt: 1, rank: 0, step: 2, loss: 1, tokensPerS: 50 },
  ]);
  assert.deepEqual(points, [
    { attempt: 0, step: 1, at: 1500, loss: 3, tokensPerS: 400, ranks: 2 },
    { attempt: 0, step: 2, at: 1000, loss: null, tokensPerS: null, ranks: 1 },
    { attempt: 1, step: 2, at: 1000, loss: 1, tokensPerS: 50, ranks: 1 },
  ]);
});

test("a job's series follows a cursor across attempts, and the latest point is per job", async () => {
  const job = await cp.store.createJob(spec());
  const sample = (attempt: number, rank: number, step: number) => ({
    jobId: job.id,
    attempt,
    rank,
    step,
    loss: 10 - step,
    tokensPerS: 100,
    at: 1_000 + step,
  });
  await cp.store.recordProgress(
    [1, 2, 3].flatMap((step) => [sample(0, 0, step), sample(0, 1, step)]),
  );
  await cp.store.updateJob(job.id, { attempt: 1 });
  await cp.store.recordProgress([sample(1, 0, 2), sample(1, 1, 2), sample(1, 0, 3)]);

  const all = await call('GET', `/api/v1/jobs/${job.id}/series`);
  assert.equal(all.status, 200);
  const points = all.json.points as { attempt: number; step: number; tokensPerS: number }[];
  assert.deepEqual(
    points.map((p) => `${p.attempt}:${p.step}`),
    ['0:1', '0:2', '0:3', '1:2', '1:3'],
  );
  assert.equal(points[0]?.tokensPerS, 200);

  const rest = await call('GET', `/api/v1/jobs/${job.id}/series?attempt=0&after=2`);
  assert.deepEqual(
    (rest.json.points as { attempt: number; step: number }[]).map((p) => `${p.attempt}:${p.step}`),
    ['0:3', '1:2', '1:3'],
  );

  const half = await call('GET', `/api/v1/jobs/${job.id}/series?after=2`);
  assert.equal(half.status, 400);
  assert.match(JSON.stringify(half.json), /attempt/);
  assert.equal((await call('GET', '/api/v1/jobs/j-nothere/series')).status, 404);

  const latest = await call('GET', '/api/v1/progress/latest');
  const mine = (latest.json.latest as { jobId: string; attempt: number; step: number }[]).find(
    (p) => p.jobId === job.id,
  );
  // Step 3 of attempt 1 has one rank of two so far: the complete step 2 is the latest.
  assert.deepEqual({ attempt: mine?.attempt, step: mine?.step }, { attempt: 1, step: 2 });

  // Later polls read on from where the last one got to, and still see what came since.
  await cp.store.recordProgress([sample(1, 1, 3), sample(1, 0, 4), sample(1, 1, 4)]);
  const next = await call('GET', '/api/v1/progress/latest');
  const now = (next.json.latest as { jobId: string; step: number; ranks: number }[]).find(
    (p) => p.jobId === job.id,
  );
  assert.deepEqual({ step: now?.step, ranks: now?.ranks }, { step: 4, ranks: 2 });
});

test('the dashboard routes need the API token', async () => {
  const response = await fetch(`${cp.url}/api/v1/progress/latest`);
  assert.equal(response.status, 401);
  const plan = await fetch(`${cp.url}/api/v1/plan`, { method: 'POST' });
  assert.equal(plan.status, 401);
});

test('the bundle is served at / with a fallback to index.html, and unknown API paths stay 404', async () => {
  const root = mkdtempSync(join(tmpdir(), 'cube-web-dist-'));
  const dir = mkdtempSync(join(tmpdir(), 'cube-web-store-'));
  let store: StateStore | null = null;
  const app = bareApp();
  try {
    mkdirSync(join(root, 'assets'));
    writeFileSync(join(root, 'index.html'), '<!doctype html><title>dash</title>');
    writeFileSync(join(root, 'assets', 'app-1.js'), 'console.log(1)');
    store = await openSqliteStore({ path: join(dir, 'cube.db') });
    await registerWebRoutes(app, { store, webRoot: `${root}/` });
    const page = await app.inject({ method: 'GET', url: '/' });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /<title>dash<\/title>/);
    const deep = await app.inject({ method: 'GET', url: '/jobs/j-abc?x=1' });
    assert.equal(deep.statusCode, 200);
    assert.match(deep.body, /<title>dash<\/title>/);
    const asset = await app.inject({ method: 'GET', url: '/assets/app-1.js' });
    assert.equal(asset.body, 'console.log(1)');
    assert.match(String(asset.headers['cache-control']), /immutable/);
    const missingAsset = await app.inject({ method: 'GET', url: '/assets/gone.js' });
    assert.equal(missingAsset.statusCode, 404);
    const api = await app.inject({ method: 'GET', url: '/api/v1/nothing' });
    assert.equal(api.statusCode, 404);
    assert.equal(api.json<{ error: { code: string } }>().error.code, 'UNKNOWN_ID');
  } finally {
    await app.close();
    await store?.close();
    rmSync(root, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without a built bundle, a page says how to build it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cube-web-store-'));
  const store = await openSqliteStore({ path: join(dir, 'cube.db') });
  const app = bareApp();
  try {
    await registerWebRoutes(app, { store, webRoot: join(dir, 'no-dist/') });
    const page = await app.inject({ method: 'GET', url: '/cluster' });
    assert.equal(page.statusCode, 503);
    assert.match(page.body, /npm run build:web/);
  } finally {
    await app.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('POST /plan answers the planner’s ranked plans in the `cube plan --json` shape', async () => {
  const r = await call('POST', '/api/v1/plan', {
    model: 'llama-3.1-8b',
    accelerator: 'h100-sxm',
    gpus: 16,
    top: 3,
  });
  assert.equal(r.status, 200, r.text);
  const expected = planJob({
    model: getModel('llama-3.1-8b'),
    cluster: defaultCluster({ accelerator: 'h100-sxm', gpus: 16 }),
    top: 3,
  });
  assert.deepEqual(
    Object.keys(r.json).sort(),
    ['accelerator', 'globalBatch', 'gpus', 'model', 'plans', 'seqLen'].sort(),
  );
  const plans = r.json.plans as Record<string, unknown>[];
  assert.equal(plans.length, expected.plans.length);
  for (const [i, p] of expected.plans.entries()) {
    for (const key of ['tp', 'pp', 'dp', 'zero', 'microBatch', 'stepTimeS', 'memory', 'time'])
      assert.deepEqual(plans[i]?.[key], p[key as keyof typeof p], `plan ${i} ${key}`);
  }
});

test('bad planner requests are refused naming the field; a path is not a model', async () => {
  const gpus = await call('POST', '/api/v1/plan', {
    model: 'llama-3.1-8b',
    accelerator: 'h100-sxm',
    gpus: 0,
  });
  assert.equal(gpus.status, 400);
  assert.equal((gpus.json.error as { where: { path: string } }).where.path, 'gpus');
  const unknown = await call('POST', '/api/v1/plan', {
    model: 'llama-9',
    accelerator: 'h100-sxm',
    gpus: 8,
  });
  assert.equal(unknown.status, 404);
  assert.equal((unknown.json.error as { where: { field: string } }).where.field, 'model');
  const file = await call('POST', '/api/v1/plan', {
    model: '/etc/passwd',
    accelerator: 'h100-sxm',
    gpus: 8,
  });
  assert.equal(file.status, 404);
  const extra = await call('POST', '/api/v1/plan', {
    model: 'llama-3.1-8b',
    accelerator: 'h100-sxm',
    gpus: 8,
    pins: { tq: 2 },
  });
  assert.equal(extra.status, 400);
});

test('POST /simulate answers goodput and lost time per policy, and refuses work over its cap', async () => {
  const r = await call('POST', '/api/v1/simulate', {
    model: 'llama-3.1-8b',
    accelerator: 'h100-sxm',
    gpus: 64,
    days: 3,
    trials: 4,
    policies: [{ name: 'a' }, { name: 'b', interval: { minutes: 60 } }],
  });
  assert.equal(r.status, 200, r.text);
  for (const key of ['goodput', 'interruptions', 'lostHours', 'pNoFault', 'pNoHuman'])
    assert.ok(key in r.json, key);
  const policies = r.json.policies as { policy: string; progress: { mean: number[] } }[];
  assert.deepEqual(
    policies.map((p) => p.policy),
    ['a', 'b'],
  );
  assert.ok(policies[0]!.progress.mean.length > 10);

  const big = await call('POST', '/api/v1/simulate', {
    model: 'llama-3.1-8b',
    accelerator: 'h100-sxm',
    gpus: 64,
    days: 60,
    trials: 100,
  });
  assert.equal(big.status, 400);
  assert.match((big.json.error as { message: string }).message, /limit/);
  const badPolicy = await call('POST', '/api/v1/simulate', {
    model: 'llama-3.1-8b',
    accelerator: 'h100-sxm',
    gpus: 64,
    days: 1,
    trials: 1,
    policies: [{ name: 'x', intervall: 3 }],
  });
  assert.equal(badPolicy.status, 400);
});

test('a plan past its time limit is stopped, and the worker serves the next one afresh', async () => {
  const compute = new ComputeWorker();
  try {
    await assert.rejects(
      compute.plan(
        { model: 'llama-3.1-405b', accelerator: 'h100-sxm', gpus: 4096 },
        {
          timeoutMs: 1,
        },
      ),
      /took longer than/,
    );
    const result = (await compute.plan(
      { model: 'llama-3.2-1b', accelerator: 'h100-sxm', gpus: 8, top: 1 },
      { timeoutMs: 120_000 },
    )) as { plans: unknown[] };
    assert.equal(result.plans.length, 1);
  } finally {
    await compute.close();
  }
});

test('heartbeats answer the failure detector’s last sight of each node, fresher than the stored time', async () => {
  const joined = await fetch(`${cp.url}/api/v1/agents/join`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      joinToken: cp.tokens.joinToken,
      name: 'beating',
      labels: {},
      devices: [{ index: 0, kind: 'cpu', model: 'cpu', memoryBytes: 2 ** 30, health: 'ok' }],
      hostMemoryBytes: 2 ** 32,
    }),
  }).then((r) => r.json() as Promise<{ nodeId: string; credential: string }>);
  const heartbeat = async (): Promise<void> => {
    const beat = await fetch(`${cp.url}/api/v1/agents/${joined.nodeId}/heartbeat`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${joined.credential}`,
      },
      body: JSON.stringify({ ranks: [] }),
    });
    assert.equal(beat.status, 200, await beat.text());
  };
  const storedAt = async (): Promise<number | null> => {
    const nodes = (await call('GET', '/api/v1/nodes')).json.nodes as {
      id: string;
      lastHeartbeatAt: number | null;
    }[];
    return nodes.find((n) => n.id === joined.nodeId)?.lastHeartbeatAt ?? null;
  };
  // The first heartbeat goes to the store with the next batch; the next batch is 10 s later.
  const joinedAt = await storedAt();
  await heartbeat();
  await until('the first heartbeat stored', 10_000, async () =>
    (await storedAt()) !== joinedAt ? true : null,
  );
  await new Promise((r) => setTimeout(r, 1200));
  await heartbeat();
  const sentAt = Date.now();
  const { status, json } = await call('GET', '/api/v1/heartbeats');
  assert.equal(status, 200);
  const answer = json as unknown as {
    now: number;
    suspectAfterMs: number;
    nodes: { nodeId: string; lastSeenAt: number; timeoutMs: number }[];
  };
  // The control plane's defaults: 1 s heartbeats, suspect after 2.5 of them.
  assert.equal(answer.suspectAfterMs, 2500);
  const mine = answer.nodes.find((n) => n.nodeId === joined.nodeId);
  assert.ok(mine !== undefined);
  assert.equal(mine.timeoutMs, 600_000);
  assert.ok(Math.abs(mine.lastSeenAt - sentAt) < 1000, `${mine.lastSeenAt} vs ${sentAt}`);
  assert.ok(answer.now >= mine.lastSeenAt);
  // The stored time waits for its 10 s batch: read as an age, it would call this node silent.
  const stored = (await storedAt()) ?? 0;
  assert.ok(stored < mine.lastSeenAt - 1000, `stored ${stored}, seen ${mine.lastSeenAt}`);
});
