import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import { FakeControlPlane, waitFor } from './fake-control-plane.ts';
import {
  alive,
  defer,
  launchCommand,
  python,
  spawnCliAgent,
  startAgent,
  tempDirs,
  type CliAgent,
} from './helpers.ts';

function cliAgent(cp: FakeControlPlane, dirs: { dataDir: string; l1: string }): CliAgent {
  return spawnCliAgent(cp, dirs, [
    '--devices',
    'cpu:2',
    '--labels',
    'server=s0,superNode=sn0',
    '--role',
    'spare',
    '--heartbeat-ms',
    '100',
  ]);
}

const sleeper = [python, '-c', 'import time; print("ready", flush=True); time.sleep(60)'];

test('cube agent joins, prints its node id, and stops its ranks when it gets SIGTERM', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const dirs = tempDirs(t);
  const agent = cliAgent(cp, dirs);
  defer(t, () => void agent.child.kill('SIGKILL'));
  const joined = await waitFor(
    'the joined line',
    () => /^\{"joined":true.*\}$/m.exec(agent.stdout)?.[0],
    {
      timeoutMs: 20_000,
    },
  );
  const line = JSON.parse(joined) as { nodeId: string; socket: string };
  assert.equal(line.nodeId, 'n-1');
  assert.equal(line.socket, join(dirs.dataDir, 'agent.sock'));
  assert.equal(cp.joins[0]?.body.role, 'spare');
  assert.deepEqual(cp.joins[0]?.body.labels, { server: 's0', superNode: 'sn0' });
  cp.queue(line.nodeId, launchCommand('j-cli', sleeper));
  await waitFor('both ranks ready', () =>
    [0, 1].every((r) => cp.logText('j-cli', r).includes('ready')),
  );
  const pids = cp.heartbeats[cp.heartbeats.length - 1]?.body.ranks.map((r) => r.pid ?? 0) ?? [];
  assert.equal(pids.length, 2);
  agent.child.kill('SIGTERM');
  assert.equal(await agent.exited, 0, agent.stderr);
  assert.deepEqual(
    cp
      .eventsOf('rank-exited')
      .map((e) => [e.rank, e.signal])
      .sort(),
    [
      [0, 'SIGTERM'],
      [1, 'SIGTERM'],
    ],
  );
  for (const pid of pids) assert.equal(alive(pid), false);
});

test('ranks left by an agent that was SIGKILLed are killed by the next agent, which reports them', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const dirs = tempDirs(t);
  const agent = cliAgent(cp, dirs);
  defer(t, () => void agent.child.kill('SIGKILL'));
  await waitFor('the join', () => agent.stdout.includes('"joined":true'), { timeoutMs: 20_000 });
  cp.queue('n-1', launchCommand('j-orphan', sleeper, { ranks: 1 }));
  await waitFor('the rank ready', () => cp.logText('j-orphan', 0).includes('ready'));
  const pid = cp.heartbeats[cp.heartbeats.length - 1]?.body.ranks[0]?.pid ?? 0;
  agent.child.kill('SIGKILL');
  await agent.exited;
  assert.equal(alive(pid), true, 'the rank outlived its agent');
  const next = await startAgent(t, cp, dirs);
  assert.equal(next.nodeId, 'n-1');
  await waitFor('the orphan gone', () => !alive(pid));
  const exit = await waitFor('the orphan reported', () => cp.eventsOf('rank-exited')[0]);
  assert.deepEqual(exit, {
    kind: 'rank-exited',
    jobId: 'j-orphan',
    attempt: 0,
    rank: 0,
    exitCode: null,
    signal: 'SIGKILL',
  });
});

test('cube agent rejects bad flags with exit code 2', async () => {
  const lines: string[] = [];
  const output = { out: (s: string) => lines.push(s), err: (s: string) => lines.push(s) };
  const base = ['agent', '--server', 'http://127.0.0.1:1', '--token', 't'];
  assert.equal(await main([...base, '--devices', 'tpu:8'], output), 2);
  assert.match(lines.join('\n'), /BAD_FLAG.*--devices must be cpu:N, nvidia, amd or auto/);
  assert.equal(await main([...base, '--labels', 'oops'], output), 2);
  assert.equal(await main([...base, '--role', 'boss'], output), 2);
  assert.equal(await main([...base, '--ckpt-listen', 'nohost'], output), 2);
});
