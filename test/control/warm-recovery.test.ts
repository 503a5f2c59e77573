// Faster in-place recovery (issue 14), end to end with real processes: a control plane, two
// agent processes, the GPT example on two nodes. One rank is SIGKILLed mid-run; the gang
// restarts in place, both ranks of the next attempt run in the warm interpreters their agents
// started while attempt 0 trained (torch already imported), and the job's loss sequence equals
// an uninterrupted run's, bit for bit.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ControlPlane } from '../../src/control/control-plane.ts';
import type { Job } from '../../src/control/model/index.ts';
import { validateJobSpec } from '../../src/control/model/index.ts';
import type { EmbeddedAgent } from '../../src/cli/embedded-cluster.ts';
import {
  lossesByStep,
  makeLevels,
  python,
  repoRoot,
  runTrainer,
  tinyModelArgs,
} from '../python/launcher.ts';
import { startTestCluster, until, type TestCluster } from '../support/test-cluster.ts';
import { processAlive, rankPids } from '../support/rank-processes.ts';

const STEPS = 120;
const TRAIN = ['examples/gpt/train.py', '--steps', String(STEPS), ...tinyModelArgs, '--seed', '33'];

let cluster: TestCluster | undefined;
let dataDir: string;
let cp: ControlPlane;
let agents: EmbeddedAgent[];

before(async () => {
  cluster = await startTestCluster('warm', { nodes: 2, devicesPerNode: 1, spares: 0 });
  ({ cp, agents, dataDir } = cluster);
});

after(async () => {
  await cluster?.stop();
});

/** Warm interpreters waiting for this job's next attempt (named cube-warm until they run it). */
function waitingWarm(jobId: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'cube-warm') continue;
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (env.includes(`CUBE_JOB_ID=${jobId}`) && processAlive(Number(entry)))
        pids.push(Number(entry));
    } catch {
      // gone, or not ours
    }
  }
  return pids;
}

/** The agents' `rank started` lines for an attempt of a job. */
function rankStarts(jobId: string, attempt: number): { rank: number; warm: boolean }[] {
  const starts: { rank: number; warm: boolean }[] = [];
  for (const a of agents)
    for (const line of readFileSync(join(a.dataDir, 'agent.log'), 'utf8').split('\n')) {
      if (!line.includes('"rank started"')) continue;
      const e = JSON.parse(line) as {
        jobId?: string;
        attempt?: number;
        rank: number;
        warm?: boolean;
      };
      if (e.jobId === jobId && e.attempt === attempt)
        starts.push({ rank: e.rank, warm: e.warm === true });
    }
  return starts.sort((x, y) => x.rank - y.rank);
}

test('a SIGKILLed rank restarts in place in warm interpreters, and the losses equal an uninterrupted run bit for bit', async () => {
  const levels = makeLevels('warm-ref');
  const referenceLog = join(dataDir, 'reference.log');
  try {
    const r = await runTrainer({
      job: 'ref',
      ranks: 2,
      levels,
      lossLog: referenceLog,
      args: TRAIN.slice(1),
    });
    assert.deepEqual(r.codes, [0, 0], r.stderr.join('\n'));
  } finally {
    levels.cleanup();
  }
  const reference = lossesByStep(referenceLog);

  const lossLog = join(dataDir, 'job.log');
  const job = await cp.store.createJob(
    validateJobSpec({
      name: 'warm',
      command: [python, ...TRAIN, '--loss-log', lossLog],
      workingDir: repoRoot,
      env: { OMP_NUM_THREADS: '1', PYTHONDONTWRITEBYTECODE: '1' },
      ranks: { nodes: 2, devicesPerNode: 1 },
      deviceType: 'cpu',
      checkpoint: { everySteps: 4, l3Every: 3 },
      restart: { maxRestarts: 2, backoffSeconds: 0.5 },
      faults: { heartbeatTimeoutSeconds: 3, hangTimeoutSeconds: 120 },
    }),
  );
  await until('step 14 and a warm interpreter per rank', 240_000, async () => {
    const p = await cp.store.listProgress(job.id, { limit: 100_000 });
    return p.some((s) => s.step >= 14) && waitingWarm(job.id).length === 2 ? true : null;
  });
  const running = (await cp.store.getJob(job.id)) as Job;
  const victim = await cp.store.getNode(running.placement?.find((p) => p.rank === 1)?.nodeId ?? '');
  assert.ok(victim);
  const ranks = rankPids(victim.name, job.id);
  assert.equal(ranks.length, 1, 'the rank, not its waiting warm interpreter');
  process.kill(ranks[0] as number, 'SIGKILL');

  const final = await until('the job to end', 300_000, async () => {
    const j = await cp.store.getJob(job.id);
    return j !== null && ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : null;
  });
  assert.equal(final.state, 'succeeded', final.reason ?? '');
  assert.equal(final.restarts, 1);
  const [fault] = await cp.store.listEvents({ jobId: job.id, kinds: ['fault-detected'] });
  assert.equal((fault?.data as { classification?: string }).classification, 'application');
  assert.deepEqual(rankStarts(job.id, 0), [
    { rank: 0, warm: false },
    { rank: 1, warm: false },
  ]);
  assert.deepEqual(rankStarts(job.id, 1), [
    { rank: 0, warm: true },
    { rank: 1, warm: true },
  ]);
  const [restored] = await cp.store.listEvents({ jobId: job.id, kinds: ['job-restored'] });
  assert.ok(restored !== undefined, 'attempt 1 restored a checkpoint');

  const losses = lossesByStep(lossLog);
  assert.equal(losses.size, STEPS);
  for (const [step, loss] of reference) assert.equal(losses.get(step), loss, `step ${step}`);
  // The job is over: nothing stays warm for it.
  await until('the warm interpreters of the ended job to go', 30_000, () =>
    Promise.resolve(waitingWarm(job.id).length === 0 ? true : null),
  );
});
