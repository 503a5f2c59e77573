// The run path end to end, with real processes on loopback: a control plane, agent processes
// standing in for nodes, a real PyTorch job. A node's agent and ranks are SIGKILLed mid-run;
// the job recovers on the hot spare and its loss sequence equals an uninterrupted run's, bit
// for bit. A rank that keeps failing ends the job after its restart policy.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { ControlPlane } from '../../src/control/control-plane.ts';
import type { Job, JobSpecInput } from '../../src/control/model/index.ts';
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
import { rankPids } from '../support/rank-processes.ts';

const STEPS = 36;
const TRAIN = ['examples/gpt/train.py', '--steps', String(STEPS), ...tinyModelArgs, '--seed', '21'];

let cluster: TestCluster | undefined;
let dataDir: string;
let cp: ControlPlane;
let agents: EmbeddedAgent[];

function spec(
  overrides: Partial<JobSpecInput> & { command: string[] },
  lossLog?: string,
): ReturnType<typeof validateJobSpec> {
  return validateJobSpec({
    name: 'e2e',
    workingDir: repoRoot,
    env: { OMP_NUM_THREADS: '1', PYTHONDONTWRITEBYTECODE: '1' },
    ranks: { nodes: 2, devicesPerNode: 2 },
    deviceType: 'cpu',
    checkpoint: { everySteps: 4, l3Every: 3 },
    restart: { maxRestarts: 2, backoffSeconds: 0.5 },
    faults: { heartbeatTimeoutSeconds: 3, hangTimeoutSeconds: 120 },
    ...overrides,
    command:
      lossLog === undefined ? overrides.command : [...overrides.command, '--loss-log', lossLog],
  });
}

before(async () => {
  cluster = await startTestCluster('control', { nodes: 2, devicesPerNode: 2, spares: 2 });
  ({ cp, agents, dataDir } = cluster);
});

after(async () => {
  await cluster?.stop();
});

test("a killed node's job recovers on the hot spare with a loss sequence identical to an uninterrupted run", async () => {
  const levels = makeLevels('control-ref');
  const referenceLog = join(dataDir, 'reference.log');
  try {
    const r = await runTrainer({
      job: 'ref',
      ranks: 4,
      levels,
      lossLog: referenceLog,
      args: TRAIN.slice(1),
    });
    assert.deepEqual(r.codes, [0, 0, 0, 0], r.stderr.join('\n'));
  } finally {
    levels.cleanup();
  }
  const reference = lossesByStep(referenceLog);

  const lossLog = join(dataDir, 'job.log');
  const job = await cp.store.createJob(spec({ command: [python, ...TRAIN] }, lossLog));
  await until('step 14', 240_000, async () => {
    const p = await cp.store.listProgress(job.id, { limit: 100_000 });
    return p.some((s) => s.step >= 14) ? true : null;
  });
  const running = (await cp.store.getJob(job.id)) as Job;
  const victimId = running.placement?.find((p) => p.rank === 3)?.nodeId;
  const victim = await cp.store.getNode(victimId ?? '');
  assert.ok(victim);
  const agent = agents.find((a) => a.name === victim.name);
  assert.ok(agent?.pid);
  // The node dies: its agent and its ranks, all at once.
  const ranks = rankPids(victim.name, job.id);
  assert.equal(ranks.length, 2, `found the victim's two ranks (${ranks.join(', ')})`);
  for (const pid of [agent.pid, ...ranks]) process.kill(pid, 'SIGKILL');

  const final = await until('the job to end', 300_000, async () => {
    const j = await cp.store.getJob(job.id);
    return j !== null && ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : null;
  });
  assert.equal(final.state, 'succeeded', final.reason ?? '');
  assert.equal(final.restarts, 1);
  const kinds = (await cp.store.listEvents({ jobId: job.id })).map((e) => e.kind);
  for (const kind of ['fault-detected', 'job-restarting', 'job-resumed', 'job-succeeded'] as const)
    assert.ok(kinds.includes(kind), `event ${kind} in ${kinds.join(', ')}`);
  const spareTaken = await cp.store.listEvents({ kinds: ['spare-taken'] });
  assert.equal(spareTaken.length, 1);
  assert.equal((await cp.store.getNode(victim.id))?.state, 'down');
  assert.ok(
    final.placement?.every((p) => p.nodeId !== victim.id),
    'the dead node runs nothing',
  );

  const losses = lossesByStep(lossLog);
  assert.equal(losses.size, STEPS);
  for (const [step, loss] of reference) assert.equal(losses.get(step), loss, `step ${step}`);
});

test('a rank that fails at once is restarted in place by the policy, cordons nothing, and the job then fails with the reason', async () => {
  const cordonedBefore = (await cp.store.listEvents({ kinds: ['node-cordoned', 'spare-taken'] }))
    .length;
  const job = await cp.store.createJob(
    spec({
      name: 'crash',
      command: [
        python,
        '-c',
        'import sys; print("ValueError: bad config", file=sys.stderr); sys.exit(3)',
      ],
      ranks: { nodes: 1, devicesPerNode: 1 },
      restart: { maxRestarts: 1, backoffSeconds: 0.2 },
    }),
  );
  const final = await until('the job to end', 60_000, async () => {
    const j = await cp.store.getJob(job.id);
    return j !== null && ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : null;
  });
  assert.equal(final.state, 'failed');
  assert.match(final.reason ?? '', /exited with code 3.*restart policy allows 1 restart/);
  // The rank's last log line, as its agent forwarded it, says what went wrong.
  assert.match(final.reason ?? '', /last line: ValueError: bad config/);
  const faults = await cp.store.listEvents({ jobId: job.id, kinds: ['fault-detected'] });
  assert.equal(faults.length, 2);
  // A program's own failure on a healthy node is the application's: no node pays for it.
  for (const f of faults)
    assert.equal((f.data as { classification?: string }).classification, 'application');
  assert.equal(
    (await cp.store.listEvents({ kinds: ['node-cordoned', 'spare-taken'] })).length,
    cordonedBefore,
    'no node cordoned and no spare taken for an application failure',
  );
  const launched = await cp.store.listEvents({ jobId: job.id, kinds: ['rank-launched'] });
  assert.equal(new Set(launched.map((e) => e.nodeId)).size, 1, 'both attempts on the same node');
});

test('a job whose ranks report no progress is detected as hung and ends by its restart policy', async () => {
  const job = await cp.store.createJob(
    spec({
      name: 'hang',
      command: [python, '-c', 'import time; time.sleep(120)'],
      ranks: { nodes: 1, devicesPerNode: 1 },
      restart: { maxRestarts: 0, backoffSeconds: 0.2 },
      faults: { heartbeatTimeoutSeconds: 3, hangTimeoutSeconds: 2 },
    }),
  );
  const final = await until('the job to end', 60_000, async () => {
    const j = await cp.store.getJob(job.id);
    return j !== null && ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : null;
  });
  assert.equal(final.state, 'failed');
  assert.match(final.reason ?? '', /no progress within 2 s/);
  const [fault] = await cp.store.listEvents({ jobId: job.id, kinds: ['fault-detected'] });
  assert.equal((fault?.data as { cause?: string } | undefined)?.cause, 'hang');
});

test('a rank that crashes the same way at the same step after a restore fails the job as a deterministic bug', async () => {
  const fixture = join(repoRoot, 'test/control/orchestrator/fixtures/crashing-rank.mjs');
  const job = await cp.store.createJob(
    spec({
      name: 'deterministic',
      command: [process.execPath, fixture, '6', '4', '100'],
      ranks: { nodes: 1, devicesPerNode: 1 },
      restart: { maxRestarts: 5, backoffSeconds: 0.2 },
    }),
  );
  const final = await until('the job to end', 60_000, async () => {
    const j = await cp.store.getJob(job.id);
    return j !== null && ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : null;
  });
  assert.equal(final.state, 'failed');
  assert.equal(final.restarts, 1, 'failed on the first repeat, not after 5 restarts');
  assert.match(
    final.reason ?? '',
    /exited with code 3 at step 6 \(last line: ValueError: shape mismatch in layer 3 \(deterministic\)\).*after restoring step 4: a deterministic failure/,
  );
});

test('a SIGKILLed rank on a healthy node is restarted in place: its node is not cordoned and no spare is taken', async () => {
  const fixture = join(repoRoot, 'test/control/fixtures/counting-rank.mjs');
  const sparesBefore = (await cp.store.listNodes()).filter((n) => n.role === 'spare').length;
  const marksBefore = (await cp.store.listEvents({ kinds: ['node-cordoned', 'spare-taken'] }))
    .length;
  const job = await cp.store.createJob(
    spec({
      name: 'rank-kill',
      command: [process.execPath, fixture, '40', '150'],
      ranks: { nodes: 2, devicesPerNode: 1 },
      restart: { maxRestarts: 2, backoffSeconds: 0.2 },
    }),
  );
  await until('step 5', 60_000, async () => {
    const p = await cp.store.listProgress(job.id, { limit: 100_000 });
    return p.some((s) => s.step >= 5) ? true : null;
  });
  const running = (await cp.store.getJob(job.id)) as Job;
  const placement = running.placement?.map((p) => p.nodeId);
  const victim = await cp.store.getNode(running.placement?.[1]?.nodeId ?? '');
  assert.ok(victim);
  const [pid] = rankPids(victim.name, job.id);
  assert.ok(pid !== undefined, 'found the rank process');
  process.kill(pid, 'SIGKILL');

  const final = await until('the job to end', 120_000, async () => {
    const j = await cp.store.getJob(job.id);
    return j !== null && ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : null;
  });
  assert.equal(final.state, 'succeeded', final.reason ?? '');
  assert.equal(final.restarts, 1);
  assert.deepEqual(
    final.placement?.map((p) => p.nodeId),
    placement,
    'restarted on the same nodes',
  );
  const [fault] = await cp.store.listEvents({ jobId: job.id, kinds: ['fault-detected'] });
  assert.equal((fault?.data as { classification?: string }).classification, 'application');
  assert.match((fault?.data as { message?: string }).message ?? '', /by SIGKILL/);
  assert.equal(
    (await cp.store.listEvents({ kinds: ['node-cordoned', 'spare-taken'] })).length,
    marksBefore,
  );
  assert.equal((await cp.store.getNode(victim.id))?.state, 'ready');
  assert.equal((await cp.store.listNodes()).filter((n) => n.role === 'spare').length, sparesBefore);
});
