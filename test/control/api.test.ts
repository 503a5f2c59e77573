// The control plane's HTTP API with a real server, a real SQLite file and real HTTP: tokens,
// bad input and what survives a restart.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane } from '../../src/control/control-plane.ts';

let dataDir: string;
let cp: ControlPlane;

async function call(
  method: string,
  path: string,
  options: { token?: string | null; body?: unknown; contentType?: string } = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const token = options.token === undefined ? cp.tokens.apiToken : options.token;
  const response = await fetch(`${cp.url}/api/v1${path}`, {
    method,
    headers: {
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      ...(options.body === undefined
        ? {}
        : { 'content-type': options.contentType ?? 'application/json' }),
    },
    ...(options.body === undefined
      ? {}
      : { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}

const goodSpec = {
  name: 'keep-me',
  command: ['.venv/bin/python', '-c', 'pass'],
  ranks: { nodes: 1, devicesPerNode: 1 },
  deviceType: 'cpu',
};

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'cube-api-'));
  cp = await ControlPlane.start({ dataDir });
});

after(async () => {
  await cp.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test('missing and bad API tokens get 401 and nothing', async () => {
  assert.equal((await call('GET', '/jobs', { token: null })).status, 401);
  assert.equal((await call('GET', '/jobs', { token: 'not-a-token' })).status, 401);
  assert.equal((await call('POST', '/jobs', { token: 'not-a-token', body: goodSpec })).status, 401);
  const heartbeat = await call('POST', '/agents/n-nobody/heartbeat', {
    token: 'x',
    body: { ranks: [] },
  });
  assert.equal(heartbeat.status, 401);
  const join = await call('POST', '/agents/join', {
    token: null,
    body: { joinToken: 'wrong', name: 'n0', devices: [], hostMemoryBytes: 1 },
  });
  assert.equal(join.status, 401);
  assert.match(JSON.stringify(join.json), /join token is not valid/);
});

test('a malformed spec is refused naming the field, and what was stored stays', async () => {
  const created = await call('POST', '/jobs', { body: goodSpec });
  assert.equal(created.status, 201);
  const unknownKey = await call('POST', '/jobs', { body: { ...goodSpec, rankz: 1 } });
  assert.equal(unknownKey.status, 400);
  assert.match(String((unknownKey.json.error as { message: string }).message), /rankz/);
  const badDevice = await call('POST', '/jobs', { body: { ...goodSpec, deviceType: 'tpu' } });
  assert.equal(badDevice.status, 400);
  assert.deepEqual((badDevice.json.error as { where: { path: string } }).where.path, 'deviceType');
  const badNodes = await call('POST', '/jobs', {
    body: { ...goodSpec, ranks: { nodes: 0, devicesPerNode: 1 } },
  });
  assert.equal((badNodes.json.error as { where: { path: string } }).where.path, 'ranks.nodes');
  const yaml = await call('POST', '/jobs', {
    body: 'name: y\ncommand: [true\n',
    contentType: 'application/yaml',
  });
  assert.equal(yaml.status, 400);
  assert.match(String((yaml.json.error as { message: string }).message), /YAML/);
  const jobs = (await call('GET', '/jobs')).json.jobs as { spec: { name: string } }[];
  assert.deepEqual(
    jobs.map((j) => j.spec.name),
    ['keep-me'],
  );
});

test('a job needing more devices than exist waits with the reason shown', async () => {
  const created = await call('POST', '/jobs', {
    body: { ...goodSpec, name: 'too-big', ranks: { nodes: 64, devicesPerNode: 8 } },
  });
  const id = String(created.json.id);
  await cp.orchestrator.tick();
  const job = (await call('GET', `/jobs/${id}`)).json as { state: string; reason: string };
  assert.equal(job.state, 'queued');
  assert.match(job.reason, /needs 64 nodes with 8 healthy cpu devices/);
  assert.equal((await call('GET', '/jobs/j-nosuchjob')).status, 404);
});

test('jobs and events survive a restart of the control plane, and event ids keep growing', async () => {
  const before = (await call('GET', '/events')).json.events as { id: number }[];
  const lastId = before.at(-1)?.id ?? 0;
  await cp.stop();
  cp = await ControlPlane.start({ dataDir });
  const jobs = (await call('GET', '/jobs')).json.jobs as { spec: { name: string } }[];
  assert.deepEqual(jobs.map((j) => j.spec.name).sort(), ['keep-me', 'too-big']);
  assert.equal(((await call('GET', '/events')).json.events as unknown[]).length, before.length);
  const created = await call('POST', '/jobs', { body: { ...goodSpec, name: 'after-restart' } });
  const events = (await call('GET', `/jobs/${String(created.json.id)}/events`)).json.events as {
    id: number;
  }[];
  assert.ok((events[0]?.id ?? 0) > lastId);
});

test('the OpenAPI document is public and the metrics take a token', async () => {
  const openapi = await fetch(`${cp.url}/api/v1/openapi.json`);
  const doc = (await openapi.json()) as { openapi: string; paths: Record<string, unknown> };
  assert.match(doc.openapi, /^3\./);
  assert.ok('/api/v1/jobs' in doc.paths && '/api/v1/agents/{nodeId}/heartbeat' in doc.paths);
  assert.equal((await fetch(`${cp.url}/metrics`)).status, 401);
  const metrics = await (
    await fetch(`${cp.url}/metrics`, { headers: { authorization: `Bearer ${cp.tokens.apiToken}` } })
  ).text();
  assert.match(metrics, /cube_jobs\{state="queued"\}/);
  assert.match(metrics, /cube_heartbeat_handling_seconds/);
});
