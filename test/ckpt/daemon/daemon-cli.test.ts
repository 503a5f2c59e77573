import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { PeerClient } from '../../../src/ckpt/daemon/index.ts';
import { accessOf, testMaster, type Placement } from './peer-access.ts';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const cube = join(repoRoot, 'bin/cube.js');

const job: Placement = {
  job: 'job1',
  attempt: 0,
  nodes: [
    { node: 'node-a', ranks: [0], replicaPeer: 'node-b' },
    { node: 'node-b', ranks: [], replicaPeer: null },
  ],
};

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cube-daemon-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function daemonArgs(dir: string): string[] {
  return [
    cube,
    'ckpt',
    'daemon',
    '--node',
    'node-b',
    '--l1',
    join(dir, 'L1'),
    '--l2',
    join(dir, 'L2'),
    '--socket',
    join(dir, 'b.sock'),
  ];
}

test('cube ckpt daemon refuses a --peer-access file others can read, and TLS flags given in part, with exit code 2', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'access.json');
  writeFileSync(file, JSON.stringify({ job1: accessOf(testMaster, job).get('node-b') }), {
    mode: 0o644,
  });
  const open = spawnSync(process.execPath, [...daemonArgs(dir), '--peer-access', file], {
    encoding: 'utf8',
  });
  assert.equal(open.status, 2, open.stderr);
  assert.match(open.stderr, /--peer-access .*access\.json has mode 0644: it holds keys/);
  const partial = spawnSync(process.execPath, [...daemonArgs(dir), '--ckpt-tls-cert', file], {
    encoding: 'utf8',
  });
  assert.equal(partial.status, 2, partial.stderr);
  assert.match(partial.stderr, /--ckpt-tls-cert, --ckpt-tls-key and --ckpt-ca go together/);
  const agent = spawnSync(
    process.execPath,
    [cube, 'agent', '--server', 'http://127.0.0.1:1', '--token', 'x', '--ckpt-ca', file],
    { encoding: 'utf8' },
  );
  assert.equal(agent.status, 2, agent.stderr);
  assert.match(agent.stderr, /go together/);
});

test('cube ckpt daemon with a --peer-access file admits the nodes it names and no others', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'access.json');
  const access = accessOf(testMaster, job);
  writeFileSync(file, JSON.stringify({ job1: access.get('node-b') }), { mode: 0o600 });
  const child = spawn(process.execPath, [...daemonArgs(dir), '--peer-access', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const line = out.split('\n').find((l) => l.includes('"ready":true'));
      if (line !== undefined) resolve((JSON.parse(line) as { peer: { port: number } }).peer.port);
    });
    child.on('exit', (code) => reject(new Error(`daemon exited ${code}`)));
  });
  const key = access.get('node-a')?.outgoing.find((o) => o.node === 'node-b')?.key as string;
  const client = (self: string): PeerClient =>
    new PeerClient(
      { node: 'node-b', host: '127.0.0.1', port },
      { self, credential: () => ({ attempt: 0, key }), behindWaitMs: 0 },
    );
  const a = client('node-a');
  t.after(() => a.close());
  assert.deepEqual(await a.list('job1'), []);
  // node-a's key presented by another name does not verify.
  const c = client('node-c');
  t.after(() => c.close());
  await assert.rejects(c.list('job1'), /node-c has no peer access for job job1/);
});
