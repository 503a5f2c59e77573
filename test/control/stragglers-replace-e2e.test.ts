// The straggler policy's `replace` action end to end, with real processes on loopback: a control
// plane, three agent processes and a hot spare, the GPT example as a three-rank DDP job with real
// L1/L2 checkpoints. One rank is throttled for real by a SIGSTOP/SIGCONT duty cycle. It is
// found from its own compute time (the example's `stepTimeS`: with DDP every rank's wall step
// time is the same), its node is cordoned `by: 'straggler'` at the next L2 commit, the spare
// takes its rank, and the job resumes from that checkpoint and finishes with every step's loss
// identical, bit for bit, to an unthrottled run's.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { ControlPlane } from '../../src/control/control-plane.ts';
import { validateJobSpec, type EventOf, type Job } from '../../src/control/model/index.ts';
import {
  lossesByStep,
  makeLevels,
  python,
  repoRoot,
  runTrainer,
  tinyModelArgs,
} from '../python/launcher.ts';
import { startTestCluster, until, type TestCluster } from '../support/test-cluster.ts';
import { dutyCycle, rankPids } from '../support/rank-processes.ts';

const STEPS = 100;
const TRAIN = ['examples/gpt/train.py', '--steps', String(STEPS), ...tinyModelArgs, '--seed', '5'];
const VICTIM_RANK = 1;

let cluster: TestCluster | undefined;
let cp: ControlPlane;
let dataDir: string;

before(async () => {
  cluster = await startTestCluster('straggler-replace', { nodes: 3, devicesPerNode: 1, spares: 1 });
  ({ cp, dataDir } = cluster);
});

after(async () => {
  await cluster?.stop();
});

test("a throttled DDP rank is found from its compute time, its node is replaced by the spare at the next L2 checkpoint, and the job's losses equal an unthrottled run's", async () => {
  const levels = makeLevels('straggler-replace-ref');
  const referenceLog = join(dataDir, 'reference.log');
  try {
    const r = await runTrainer({
      job: 'ref',
      ranks: 3,
      levels,
      lossLog: referenceLog,
      args: TRAIN.slice(1),
    });
    assert.deepEqual(r.codes, [0, 0, 0], r.stderr.join('\n'));
  } finally {
    levels.cleanup();
  }
  const reference = lossesByStep(referenceLog);
  assert.equal(reference.size, STEPS);

  const lossLog = join(dataDir, 'job.log');
  const job = await cp.store.createJob(
    validateJobSpec({
      name: 'straggler-replace',
      command: [python, ...TRAIN, '--loss-log', lossLog],
      workingDir: repoRoot,
      env: { OMP_NUM_THREADS: '1', PYTHONDONTWRITEBYTECODE: '1' },
      ranks: { nodes: 3, devicesPerNode: 1 },
      deviceType: 'cpu',
      checkpoint: { everySteps: 10 },
      restart: { maxRestarts: 0, backoffSeconds: 0.2 },
      faults: {
        heartbeatTimeoutSeconds: 5,
        hangTimeoutSeconds: 120,
        straggler: { slowdown: 2, windowSteps: 10, action: 'replace' },
      },
    }),
  );
  await until('every rank past step 12', 120_000, async () => {
    const p = await cp.store.listProgress(job.id, { limit: 100_000 });
    const ranks = new Set(p.filter((s) => s.step >= 12).map((s) => s.rank));
    return ranks.size === 3 ? true : null;
  });
  assert.deepEqual(
    await cp.store.listEvents({ jobId: job.id, kinds: ['straggler'] }),
    [],
    'no straggler while every rank runs freely',
  );
  const running = (await cp.store.getJob(job.id)) as Job;
  const victimId = running.placement?.find((p) => p.rank === VICTIM_RANK)?.nodeId;
  const victim = await cp.store.getNode(victimId ?? '');
  assert.ok(victim);
  const [pid] = rankPids(victim.name, job.id);
  assert.ok(pid !== undefined, 'found the rank process');
  // Stopped 40 ms of every 50 ms: the rank runs at most 20% of the time, so its compute time
  // stands well above the 2x threshold even when a loaded machine makes the others noisy.
  const release = dutyCycle(pid, 40, 50);
  let found: EventOf<'straggler'>;
  let cordoned;
  try {
    found = (await until('a straggler event', 60_000, async () => {
      const [e] = await cp.store.listEvents({ jobId: job.id, kinds: ['straggler'] });
      return e ?? null;
    })) as EventOf<'straggler'>;
    cordoned = await until('the straggler cordoned', 60_000, async () => {
      const [e] = await cp.store.listEvents({ kinds: ['node-cordoned'] });
      return e ?? null;
    });
  } finally {
    await release();
  }
  assert.equal(found.rank, VICTIM_RANK, JSON.stringify(found.data));
  assert.equal(found.nodeId, victim.id);
  assert.ok(found.data.ratio >= 2, `ratio ${found.data.ratio}`);
  assert.equal(cordoned.nodeId, victim.id);
  const why = cordoned.data as { by?: string; reason?: string };
  assert.equal(why.by, 'straggler');
  const m = /resuming from the L2 checkpoint of step (\d+)/.exec(why.reason ?? '');
  assert.ok(m, why.reason);
  const step = Number(m[1]);
  assert.ok(cordoned.id > found.id, 'the replacement came after the finding');

  const final = await until('the job to end', 120_000, async () => {
    const j = await cp.store.getJob(job.id);
    return j !== null && ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : null;
  });
  assert.equal(final.state, 'succeeded', final.reason ?? '');
  assert.equal(final.attempt, 1);
  assert.equal(final.restarts, 0, 'a planned replacement is not a restart');
  const spare = cluster?.agents.find((a) => a.name.startsWith('spare'));
  const spareNode = (await cp.store.listNodes()).find((n) => n.name === spare?.name);
  assert.equal(
    final.placement?.find((p) => p.rank === VICTIM_RANK)?.nodeId,
    spareNode?.id,
    'the spare took the straggler rank',
  );
  assert.equal((await cp.store.getNode(victim.id))?.state, 'cordoned');
  const restored = await cp.store.listEvents({ jobId: job.id, kinds: ['job-restored'] });
  assert.deepEqual(
    restored.map((e) => [e.rank, (e.data as { step: number }).step]).sort(),
    [0, 1, 2].map((r) => [r, step]),
    'every rank resumed from the checkpoint the replacement named',
  );
  assert.deepEqual(await cp.store.listEvents({ jobId: job.id, kinds: ['fault-detected'] }), []);

  const losses = lossesByStep(lossLog);
  assert.equal(losses.size, STEPS);
  for (const [s, loss] of reference) assert.equal(losses.get(s), loss, `step ${s}`);
});
