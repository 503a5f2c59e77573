// Issue 13, finding 4: the default L1 directory /dev/shm/cube-<host> is a predictable name in a
// world-writable directory; whoever creates it first could read or swap every shard. The agent
// now refuses a directory it does not own or that others may write, and keeps its own private.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { NodeAgent, cpuPlugin } from '../../src/agent/index.ts';
import { FakeControlPlane } from './fake-control-plane.ts';
import { defer, startAgent, tempDirs, testLog } from './helpers.ts';

const isRoot = process.getuid?.() === 0;

function agentOn(
  cp: FakeControlPlane,
  dataDir: string,
  options: { name: string; l1Root?: string },
): NodeAgent {
  return new NodeAgent({
    server: cp.url,
    joinToken: cp.joinToken,
    name: options.name,
    dataDir,
    ...(options.l1Root === undefined ? {} : { l1Root: options.l1Root }),
    devices: cpuPlugin({ count: 1 }),
    log: testLog,
  });
}

test(
  'an agent refuses a default L1 directory that another user created first, naming its path, owner and mode',
  { skip: isRoot ? false : 'needs root to give the directory to another user' },
  async (t) => {
    const cp = await FakeControlPlane.start();
    defer(t, () => cp.close());
    const { dataDir } = tempDirs(t);
    const name = `node-${randomBytes(4).toString('hex')}`;
    // The attacker's copy of the name the agent will use: theirs, and readable by them.
    const l1 = join('/dev/shm', `cube-${name}`);
    mkdirSync(l1, { mode: 0o755 });
    chownSync(l1, 65534, 65534);
    defer(t, () => rmSync(l1, { recursive: true, force: true }));
    const agent = agentOn(cp, dataDir, { name });
    defer(t, () => agent.stop());
    await assert.rejects(agent.start({ signal: AbortSignal.timeout(15_000) }), (error: Error) => {
      assert.match(
        error.message,
        new RegExp(`L1 directory ${l1} is owned by uid 65534 \\(mode 0755\\)`),
      );
      return true;
    });
    assert.equal(cp.joins.length, 0, 'the agent never joined');
    assert.equal(statSync(l1).uid, 65534, 'and left the directory alone');
  },
);

test('an agent refuses an L1 directory that everyone may write (mode 0777)', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const { dataDir, l1 } = tempDirs(t);
  chmodSync(l1, 0o777);
  const agent = agentOn(cp, dataDir, { name: 'node-a', l1Root: l1 });
  defer(t, () => agent.stop());
  await assert.rejects(agent.start({ signal: AbortSignal.timeout(15_000) }), {
    message: new RegExp(
      `L1 directory ${l1} \\(owner uid \\d+\\) has mode 0777: writable by everyone`,
    ),
  });
  assert.equal(cp.joins.length, 0);
});

test('an agent refuses a data directory its group may write', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const { dataDir, l1 } = tempDirs(t);
  chmodSync(dataDir, 0o770);
  const agent = agentOn(cp, dataDir, { name: 'node-a', l1Root: l1 });
  defer(t, () => agent.stop());
  await assert.rejects(agent.start({ signal: AbortSignal.timeout(15_000) }), {
    message: /agent data directory .* has mode 0770: writable by its group/,
  });
});

test('an agent keeps its data directory, L1 and L2 at 0700 and its sockets at 0600', async (t) => {
  const cp = await FakeControlPlane.start();
  defer(t, () => cp.close());
  const dirs = tempDirs(t);
  // Made by the agent itself (missing), and an existing one of its own that is too open.
  const l1 = join(dirs.l1, 'fresh', 'L1');
  chmodSync(dirs.dataDir, 0o755);
  const agent = await startAgent(t, cp, { dataDir: dirs.dataDir, l1 });
  const mode = (path: string): number => statSync(path).mode & 0o777;
  assert.equal(mode(dirs.dataDir), 0o700);
  assert.equal(mode(l1), 0o700);
  assert.equal(mode(join(dirs.dataDir, 'l2')), 0o700);
  assert.equal(mode(join(dirs.dataDir, 'agent.sock')), 0o600);
  assert.equal(mode(join(dirs.dataDir, 'ckpt.sock')), 0o600);
  assert.equal(agent.ckptSocketPath, join(dirs.dataDir, 'ckpt.sock'));
});
