// The checkpoint-peer keys a launch command carries reach the agent's daemon over its IPC
// channel and nowhere else: not the agent's log (the daemon's lines included), not its files.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { newMasterKey, PeerClient, peerAccessFor } from '../../src/ckpt/daemon/index.ts';
import { FakeControlPlane, waitFor } from './fake-control-plane.ts';
import { defer, launchCommand, python, startAgent, tempDirs } from './helpers.ts';

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((p) => join(dir, p))
    .filter((p) => {
      try {
        return statSync(p).isFile();
      } catch {
        return false;
      }
    });
}

test('peer keys from a launch command open the agent’s daemon, and appear in no log line and no file', async (t) => {
  let logText = '';
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        logText += chunk.toString();
        done();
      },
    }),
  );
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const dirs = tempDirs(t);
  const agent = await startAgent(t, cp, dirs, { heartbeatMs: 300, log });
  const placement = {
    job: 'j-keys',
    attempt: 0,
    nodes: [
      { node: 'node-a', ranks: [0], replicaPeer: 'node-b' },
      { node: 'node-b', ranks: [1], replicaPeer: 'node-a' },
    ],
  };
  const master = newMasterKey();
  const access = peerAccessFor(master, placement, 'node-a');
  const fromB = peerAccessFor(master, placement, 'node-b');
  const keys = [...access.outgoing.map((o) => o.key), ...access.incoming.map((g) => g.key)];
  const launch = launchCommand('j-keys', [python, '-c', 'pass'], { ranks: 1 });
  const checkpoint = launch.checkpoint as Record<string, unknown>;
  cp.queue(agent.nodeId ?? '', { ...launch, checkpoint: { ...checkpoint, peerAccess: access } });
  // A command the agent cannot parse, carrying the keys: skipped, and logged without them.
  cp.queue(agent.nodeId ?? '', {
    ...launch,
    attempt: -1,
    checkpoint: { ...checkpoint, peerAccess: access },
  });
  await waitFor('the rank to exit', () => cp.eventsOf('rank-exited').length > 0, {
    timeoutMs: 30_000,
  });
  await waitFor('the bad command to be skipped', () =>
    logText.includes('skipping a command this agent does not understand'),
  );

  // The daemon has them: node-b's key toward node-a opens it for this job.
  const peer = agent.snapshot().peer;
  assert.ok(peer !== null);
  const key = fromB.outgoing.find((o) => o.node === 'node-a')?.key ?? '';
  const client = new PeerClient(
    { node: 'node-a', ...peer },
    { self: 'node-b', credential: () => ({ attempt: 0, key }), behindWaitMs: 0 },
  );
  defer(t, () => client.close());
  assert.deepEqual(await client.list('j-keys'), []);

  await agent.stop();
  assert.ok(logText.length > 0);
  for (const k of keys) {
    assert.ok(!logText.includes(k), 'a peer key is in the agent log');
    for (const file of [...filesUnder(dirs.dataDir), ...filesUnder(dirs.l1)])
      assert.ok(!readFileSync(file).toString('latin1').includes(k), `a peer key is in ${file}`);
  }
});
