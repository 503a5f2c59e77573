// The control plane process is SIGKILLed mid-job and started again on the same data directory:
// no job, node or event is lost, and the job, whose ranks kept running under their agents,
// finishes without a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedAgents, stopEmbeddedAgents } from '../../src/cli/embedded-cluster.ts';
import { freePort, python, repoRoot } from '../python/launcher.ts';
import { until as untilReady } from '../support/test-cluster.ts';

const cube = join(repoRoot, 'bin/cube.js');

function startServer(dataDir: string, port: number): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [cube, 'server', '--data-dir', dataDir, '--port', String(port), '--heartbeat-timeout-s', '4'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const line = out.split('\n').find((l) => l.includes('"ready":true'));
      if (line !== undefined) resolve({ child, url: (JSON.parse(line) as { url: string }).url });
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)));
  });
}

/** Polls through the server's restarts: a probe that throws (server down) counts as not yet. */
function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null>): Promise<T> {
  return untilReady(what, timeoutMs, probe, { intervalMs: 200, ignoreErrors: true });
}

test('a SIGKILLed control plane restarts with every job, node and event, and the running job finishes', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cube-restart-'));
  const shmRoot = mkdtempSync(join('/dev/shm', 'cube-restart-'));
  const port = await freePort();
  let server = await startServer(join(dataDir, 'server'), port);
  const tokens = JSON.parse(readFileSync(join(dataDir, 'server', 'admin-tokens.json'), 'utf8')) as {
    apiToken: string;
    joinToken: string;
  };
  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const r = await fetch(`${server.url}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${tokens.apiToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status}`);
    return (await r.json()) as T;
  };
  const agents = startEmbeddedAgents({
    server: server.url,
    joinToken: tokens.joinToken,
    dataDir: join(dataDir, 'nodes'),
    shmRoot,
    nodes: 2,
    devicesPerNode: 1,
    spares: 0,
    heartbeatMs: 500,
  });
  t.after(async () => {
    await stopEmbeddedAgents(agents, shmRoot);
    server.child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });
  await until('the nodes', 60_000, async () =>
    (await api<{ nodes: { state: string }[] }>('GET', '/nodes')).nodes.filter(
      (n) => n.state === 'ready',
    ).length === 2
      ? true
      : null,
  );
  const job = await api<{ id: string }>('POST', '/jobs', {
    name: 'survive',
    command: [
      python,
      'examples/gpt/train.py',
      '--steps',
      '40',
      '--layers',
      '1',
      '--hidden',
      '32',
      '--heads',
      '2',
      '--seq-len',
      '16',
      '--batch',
      '2',
    ],
    workingDir: repoRoot,
    env: { OMP_NUM_THREADS: '1', PYTHONDONTWRITEBYTECODE: '1' },
    ranks: { nodes: 2, devicesPerNode: 1 },
    deviceType: 'cpu',
    checkpoint: { everySteps: 5 },
    faults: { heartbeatTimeoutSeconds: 4 },
  });
  await until('step 8', 120_000, async () => {
    const j = await api<{ lastProgress: { step: number } | null }>('GET', `/jobs/${job.id}`);
    return (j.lastProgress?.step ?? 0) >= 8 ? true : null;
  });
  const eventsBefore = (await api<{ events: { id: number }[] }>('GET', `/jobs/${job.id}/events`))
    .events;

  server.child.kill('SIGKILL');
  await new Promise((r) => server.child.once('exit', r));
  await new Promise((r) => setTimeout(r, 1500));
  server = await startServer(join(dataDir, 'server'), port);

  const nodes = (await api<{ nodes: unknown[] }>('GET', '/nodes')).nodes;
  assert.equal(nodes.length, 2);
  const eventsAfter = (await api<{ events: { id: number }[] }>('GET', `/jobs/${job.id}/events`))
    .events;
  assert.deepEqual(
    eventsAfter.slice(0, eventsBefore.length).map((e) => e.id),
    eventsBefore.map((e) => e.id),
  );
  const final = await until('the job to end', 180_000, async () => {
    const j = await api<{ state: string; restarts: number; reason: string | null }>(
      'GET',
      `/jobs/${job.id}`,
    );
    return ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : null;
  });
  assert.equal(final.state, 'succeeded', final.reason ?? '');
  assert.equal(final.restarts, 0);
});
