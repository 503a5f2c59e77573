// End to end with real node daemons: two "nodes" on this machine, each with its own L1, L2,
// daemon process and rank; every L1 shard is replicated to the other node and every third
// checkpoint persisted to a shared L3. A node is lost (its daemon killed, its memory wiped)
// and its rank comes back on a fresh node: it restores from the peer's L2 replica. Then every
// node's L1 and L2 is lost: the job restores from L3. Both times the loss sequence equals an
// uninterrupted run's, bit for bit.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newMasterKey, peerAccessFor, type PlacedNode } from '../../src/ckpt/daemon/index.ts';
import {
  freePort,
  lossesByStep,
  makeLevels,
  repoRoot,
  runTrainer,
  type RunResult,
  tinyModelArgs,
} from './launcher.ts';

const STEPS = 30;
const ARGS = ['--steps', String(STEPS), '--ckpt-every', '2', ...tinyModelArgs, '--seed', '11'];

interface DaemonNode {
  readonly name: string;
  readonly l1: string;
  readonly l2: string;
  readonly socket: string;
  readonly port: number;
  process: ChildProcess | null;
}

let work: string;
let shm: string;
let l3: string;
let reference: Map<number, string>;
const daemons: DaemonNode[] = [];

function node(name: string, port: number): DaemonNode {
  const n = {
    name,
    l1: join(shm, name),
    l2: join(work, name, 'L2'),
    socket: join(work, `${name}.sock`),
    port,
    process: null,
  };
  mkdirSync(n.l1, { recursive: true });
  mkdirSync(n.l2, { recursive: true });
  return n;
}

/**
 * The peer keys and grants of `n` for `job` (`--peer-access`, 0600), as a control plane would
 * give them. One static grant covers the whole test: rank 0 runs on node a, then on node c.
 */
const master = newMasterKey();
function accessFile(n: DaemonNode, job: string): string {
  const nodes: PlacedNode[] = [
    { node: 'node-a', ranks: [0], replicaPeer: 'node-b' },
    { node: 'node-b', ranks: [1], replicaPeer: 'node-a' },
    { node: 'node-c', ranks: [0], replicaPeer: 'node-b' },
  ];
  const file = join(work, `${n.name}-peer-access.json`);
  const access = peerAccessFor(master, { job, attempt: 0, nodes }, n.name);
  writeFileSync(file, JSON.stringify({ [job]: access }), { mode: 0o600 });
  return file;
}

async function startDaemon(
  n: DaemonNode,
  peers: readonly DaemonNode[],
  replica: DaemonNode,
): Promise<void> {
  const args = [
    join(repoRoot, 'bin/cube.js'),
    'ckpt',
    'daemon',
    '--node',
    n.name,
    '--l1',
    n.l1,
    '--l2',
    n.l2,
    '--l3',
    l3,
    '--socket',
    n.socket,
    '--listen',
    `127.0.0.1:${n.port}`,
    '--l3-every',
    '3',
    '--replica-peer',
    `${replica.name}=127.0.0.1:${replica.port}`,
    ...peers.flatMap((p) => ['--peer', `${p.name}=127.0.0.1:${p.port}`]),
    '--peer-access',
    accessFile(n, 'node-loss'),
  ];
  const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  n.process = child;
  daemons.push(n);
  let log = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (log += c));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      if (out.includes('"ready":true')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`daemon ${n.name} exited ${code}: ${log}${out}`)));
  });
}

function kill(n: DaemonNode): Promise<void> {
  const child = n.process;
  n.process = null;
  if (child === null || child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.on('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

function status(
  n: DaemonNode,
): Promise<{ jobs: { inFlight: unknown[]; newest: Record<string, number | null> }[] }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: n.socket, path: '/v1/status' }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve(JSON.parse(body) as never));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Waits until the daemons have replicated and persisted everything they were given. */
async function settled(nodes: readonly DaemonNode[]): Promise<void> {
  for (let i = 0; i < 200; i += 1) {
    const all = await Promise.all(nodes.map(status));
    if (all.every((s) => s.jobs.every((j) => j.inFlight.length === 0))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('daemons did not settle');
}

function rankEnv(nodes: readonly DaemonNode[]) {
  return (rank: number): Record<string, string> => {
    const n = nodes[rank] as DaemonNode;
    return {
      CUBE_NODE: n.name,
      CUBE_CKPT_L1: n.l1,
      CUBE_CKPT_SOCKET: n.socket,
      LOCAL_RANK: '0',
      LOCAL_WORLD_SIZE: '1',
    };
  };
}

function resumed(r: RunResult): string[] {
  return r.stdout.map((out) => /resumed step \d+ level (L\d)/.exec(out)?.[1] ?? 'none');
}

function assertClean(r: RunResult): void {
  assert.deepEqual(
    r.codes,
    r.codes.map(() => 0),
    r.stderr.map((s) => s.slice(-2000)).join('\n---\n'),
  );
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'cube-node-loss-'));
  shm = mkdtempSync(join('/dev/shm', 'cube-node-loss-'));
  l3 = join(work, 'L3');
  mkdirSync(l3);
  const levels = makeLevels('node-loss-ref');
  try {
    const log = join(work, 'reference.log');
    const r = await runTrainer({ job: 'ref', ranks: 2, levels, lossLog: log, args: ARGS });
    assertClean(r);
    reference = lossesByStep(log);
    assert.equal(reference.size, STEPS);
  } finally {
    levels.cleanup();
  }
});

after(async () => {
  await Promise.all(daemons.map(kill));
  rmSync(work, { recursive: true, force: true });
  rmSync(shm, { recursive: true, force: true });
});

test("a lost node's rank restores from the peer's L2 replica, then from L3 when all memory is lost, bit for bit", async () => {
  const [pa, pb, pc] = [await freePort(), await freePort(), await freePort()];
  const a = node('node-a', pa);
  const b = node('node-b', pb);
  const c = node('node-c', pc);
  await startDaemon(b, [a, c], a);
  await startDaemon(a, [b, c], b);
  const lossLog = join(work, 'run.log');
  const levels = { l1: a.l1, l3, cleanup: () => undefined };
  const job = 'node-loss';

  // 1. Train on nodes a and b until step 11, then both ranks die.
  const first = await runTrainer({
    job,
    ranks: 2,
    levels,
    lossLog,
    args: ARGS,
    killAtStep: 11,
    rankEnv: rankEnv([a, b]),
  });
  assert.ok(first.killed);
  await settled([a, b]);

  // 2. Node a is lost: its daemon dies and its memory (L1) and replicas (L2) are gone. Rank 0
  //    comes back on node c, whose daemon knows node b; rank 1 stays on node b.
  await kill(a);
  rmSync(a.l1, { recursive: true, force: true });
  rmSync(a.l2, { recursive: true, force: true });
  await startDaemon(c, [b], b);
  const second = await runTrainer({
    job,
    ranks: 2,
    levels,
    lossLog,
    args: ARGS,
    killAtStep: 21,
    rankEnv: rankEnv([c, b]),
  });
  assert.ok(second.killed);
  assert.deepEqual(resumed(second), ['L2', 'L1'], second.stdout.join('\n'));
  await settled([c, b]);

  // 3. Every node's memory and replicas are lost: only L3 remains.
  for (const n of [b, c]) {
    rmSync(n.l1, { recursive: true, force: true });
    rmSync(n.l2, { recursive: true, force: true });
    mkdirSync(n.l1, { recursive: true });
    mkdirSync(n.l2, { recursive: true });
  }
  const third = await runTrainer({
    job,
    ranks: 2,
    levels,
    lossLog,
    args: ARGS,
    rankEnv: rankEnv([c, b]),
  });
  assertClean(third);
  assert.deepEqual(resumed(third), ['L3', 'L3'], third.stdout.join('\n'));

  const losses = lossesByStep(lossLog);
  assert.equal(losses.size, STEPS);
  for (const [step, loss] of reference) assert.equal(losses.get(step), loss, `step ${step}`);
});
