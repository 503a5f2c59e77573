// End to end with real node daemons, through DCP: examples/dcp/train.py (FSDP2, dcp.save through
// cube.dcp.Writer) on two "nodes", one rank each. A node is lost and its rank comes back on a
// fresh node: the DCP metadata (rank 0's shard) and rank 0's chunks come from the peer's L2
// replica through the daemon. Then every node's memory is lost: the job restores from L3. Both
// times the loss sequence equals an uninterrupted run's, bit for bit.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  freePort,
  lossesByStep,
  makeLevels,
  repoRoot,
  runTrainer,
  tinyModelArgs,
  type RunResult,
} from './launcher.ts';
import {
  killDaemon,
  makeNode,
  rankEnvOn,
  settled,
  startDaemon,
  type DaemonNode,
} from './daemons.ts';
import { torch2Python } from './torch2.ts';

const { python, skip } = torch2Python();
const trainer = join(repoRoot, 'examples/dcp/train.py');
const STEPS = 20;
const ARGS = ['--steps', String(STEPS), '--ckpt-every', '2', ...tinyModelArgs, '--seed', '11'];
const JOB = 'dcp-node-loss';

function resumed(r: RunResult): string[] {
  return r.stdout.map((out) => /resumed step \d+ level (L\d)/.exec(out)?.[1] ?? 'none');
}

function assertClean(r: RunResult): void {
  assert.deepEqual(
    r.codes,
    r.codes.map(() => 0),
    r.stderr.map((s) => s.slice(-3000)).join('\n---\n'),
  );
}

describe('DCP checkpoints through node daemons', { skip }, () => {
  let work: string;
  let shm: string;
  let l3: string;
  let reference: Map<number, string>;
  const started: DaemonNode[] = [];

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'cube-dcp-node-loss-'));
    shm = mkdtempSync(join('/dev/shm', 'cube-dcp-node-loss-'));
    l3 = join(work, 'L3');
    mkdirSync(l3);
    const levels = makeLevels('dcp-node-loss-ref');
    try {
      const log = join(work, 'reference.log');
      const r = await runTrainer({
        job: 'ref',
        ranks: 2,
        levels,
        lossLog: log,
        args: ARGS,
        python,
        trainer,
        timeoutMs: 600_000,
      });
      assertClean(r);
      reference = lossesByStep(log);
      assert.equal(reference.size, STEPS);
    } finally {
      levels.cleanup();
    }
  });

  after(async () => {
    await Promise.all(started.map(killDaemon));
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
    if (shm !== undefined) rmSync(shm, { recursive: true, force: true });
  });

  test("a lost node's rank restores the DCP checkpoint from the peer's L2 replica, then from L3, bit for bit", async () => {
    const [pa, pb, pc] = [await freePort(), await freePort(), await freePort()];
    const a = makeNode(work, shm, 'node-a', pa);
    const b = makeNode(work, shm, 'node-b', pb);
    const c = makeNode(work, shm, 'node-c', pc);
    const placement = [
      { node: 'node-a', ranks: [0], replicaPeer: 'node-b' },
      { node: 'node-b', ranks: [1], replicaPeer: 'node-a' },
      { node: 'node-c', ranks: [0], replicaPeer: 'node-b' },
    ];
    const start = async (n: DaemonNode, peers: DaemonNode[], replica: DaemonNode) => {
      started.push(n);
      await startDaemon(n, { work, l3, job: JOB, placement, peers, replica, l3Every: 3 });
    };
    await start(b, [a, c], a);
    await start(a, [b, c], b);
    const lossLog = join(work, 'run.log');
    const levels = { l1: a.l1, l3, cleanup: () => undefined };
    const run = (killAtStep: number | undefined, nodes: DaemonNode[]) =>
      runTrainer({
        job: JOB,
        ranks: 2,
        levels,
        lossLog,
        args: ARGS,
        python,
        trainer,
        killAtStep,
        rankEnv: rankEnvOn(nodes),
        timeoutMs: 600_000,
      });

    // 1. Train on nodes a and b until step 9, then both ranks die.
    const first = await run(9, [a, b]);
    assert.ok(first.killed, first.stderr.join('\n---\n').slice(-4000));
    await settled([a, b]);

    // 2. Node a is lost (daemon, memory, replicas). Rank 0 comes back on node c; rank 1 stays on
    //    node b, whose L2 holds node a's shard of rank 0 with the DCP metadata.
    await killDaemon(a);
    rmSync(a.l1, { recursive: true, force: true });
    rmSync(a.l2, { recursive: true, force: true });
    await start(c, [b], b);
    const second = await run(15, [c, b]);
    assert.ok(second.killed, second.stderr.join('\n---\n').slice(-4000));
    // Both ranks report the source of rank 0's shard (the metadata): node b's L2 replica.
    assert.deepEqual(resumed(second), ['L2', 'L2'], second.stdout.join('\n'));
    await settled([c, b]);

    // 3. Every node's memory and replicas are lost: only L3 remains.
    for (const n of [b, c]) {
      rmSync(n.l1, { recursive: true, force: true });
      rmSync(n.l2, { recursive: true, force: true });
      mkdirSync(n.l1, { recursive: true });
      mkdirSync(n.l2, { recursive: true });
    }
    const third = await run(undefined, [c, b]);
    assertClean(third);
    assert.deepEqual(resumed(third), ['L3', 'L3'], third.stdout.join('\n'));

    const losses = lossesByStep(lossLog);
    assert.equal(losses.size, STEPS);
    for (const [step, loss] of reference) assert.equal(losses.get(step), loss, `step ${step}`);
  });
});
