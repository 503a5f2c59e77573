// The agent's metrics listener: off by default, on with a flag, authenticated unless declared
// public, and refused at startup (exit 2) when asked for without a way to authenticate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeControlPlane } from './fake-control-plane.ts';
import { defer, spawnCliAgent, startAgent, tempDirs } from './helpers.ts';
import { promtoolFindings, value } from '../control/metrics-text.ts';

test('an agent opens no metrics listener unless asked to', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const agent = await startAgent(t, cp, tempDirs(t));
  assert.equal(agent.metricsAddress, null);
});

test('a public metrics listener serves the agent and daemon figures without a token, and they pass promtool', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const agent = await startAgent(t, cp, tempDirs(t), {
    metrics: { host: '127.0.0.1', port: 0, access: { kind: 'public' } },
  });
  const address = agent.metricsAddress;
  assert.ok(address !== null && address.port > 0);
  const res = await fetch(`http://127.0.0.1:${address.port}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await res.text();
  assert.equal(promtoolFindings(text), '');
  assert.equal(value(text, 'cube_ckpt_daemon_up'), 1);
  assert.equal(value(text, 'cube_agent_ranks', { state: 'running' }), 0);
  assert.equal(value(text, 'cube_agent_outbox_items', { outbox: 'events' }), 0);
  // A node with no checkpoint yet holds nothing at any level, and says so.
  for (const level of ['L1', 'L2', 'L3'])
    assert.equal(value(text, 'cube_ckpt_held_bytes', { level }), 0, level);
  assert.ok(value(text, 'cube_agent_process_resident_memory_bytes') > 0);
  assert.doesNotMatch(text, /_total gauge$/m, 'no gauge named like a counter');
  const post = await fetch(`http://127.0.0.1:${address.port}/metrics`, { method: 'POST' });
  assert.equal(post.status, 405);
});

test('a token-protected listener answers 401 without the token and 200 with it', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const token = 'a-metrics-token-of-some-length';
  const agent = await startAgent(t, cp, tempDirs(t), {
    metrics: { host: '127.0.0.1', port: 0, access: { kind: 'token', token } },
  });
  const url = `http://127.0.0.1:${agent.metricsAddress?.port ?? 0}/metrics`;
  assert.equal((await fetch(url)).status, 401);
  assert.equal((await fetch(url, { headers: { authorization: 'Basic abc' } })).status, 401);
  assert.equal((await fetch(url, { headers: { authorization: `Bearer ${token}` } })).status, 200);
});

test('cube agent refuses a metrics listener without a token file, with a token file others can read, or a token flag without a listener (exit 2)', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const dirs = tempDirs(t);
  const loose = join(dirs.dataDir, 'loose-token');
  writeFileSync(loose, 'a-metrics-token-of-some-length\n', { mode: 0o644 });
  const cases: [string[], RegExp][] = [
    [['--metrics-listen', '127.0.0.1:0'], /--metrics-listen needs --metrics-token-file/],
    [['--metrics-listen', '127.0.0.1:0', '--metrics-token-file', loose], /readable by others/],
    [['--metrics-public'], /--metrics-public needs --metrics-listen/],
    [['--metrics-listen', 'nowhere'], /--metrics-listen must be HOST:PORT/],
  ];
  for (const [flags, message] of cases) {
    const agent = spawnCliAgent(cp, dirs, flags);
    assert.equal(await agent.exited, 2, `${flags.join(' ')}: ${agent.stderr}`);
    assert.match(agent.stderr, message);
  }
  assert.equal(cp.joins.length, 0, 'nothing joined');
});
