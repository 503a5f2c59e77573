// The restart policy over a long run (issue 14): the backoff and the restart budget count the
// restarts in a row without progress, so a month of unrelated faults neither ends the job nor
// stretches every recovery to the 60 s cap, while a crash loop still ends. Real SQLite store,
// injected clock, fake node reports.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { CubeError } from '../../../src/core/index.ts';
import { validateJobSpec, type Job } from '../../../src/control/model/index.ts';
import { Harness } from './harness.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** The one rank crashes; runs until the job recovers into `attempt` (or fails). */
async function crash(harness: Harness, job: Job, line: string): Promise<Job> {
  await harness.exit(job.id, 0, { code: 1, lastLines: [line] });
  await harness.runUntil('the fault', 5000, async () => {
    const j = await harness.job(job.id);
    return j.state === 'recovering' || j.state === 'failed' ? true : null;
  });
  return harness.runUntil('the relaunch or the end', 60_000, async () => {
    const j = await harness.job(job.id);
    if (j.state === 'failed') return j;
    return j.state === 'scheduled' && (await harness.currentRanks(job.id)).length > 0 ? j : null;
  });
}

/** The relaunched rank restores `step` and trains on (job-resumed). */
async function resume(harness: Harness, job: Job, step: number): Promise<void> {
  await harness.restored(job.id, step);
  await harness.progress(job.id, step + 1);
}

/** Every node of the job commits a checkpoint of `step` at `level`, as the daemons push it. */
async function committed(
  harness: Harness,
  job: Job,
  step: number,
  level: 'L1' | 'L2' | 'L3',
): Promise<void> {
  await harness.orchestrator.agentEvents(await harness.stored('node-0'), [
    { kind: 'checkpoint-committed', jobId: job.id, level, step },
  ]);
}

async function backoffs(harness: Harness, job: Job): Promise<(number | undefined)[]> {
  return (await harness.events({ jobId: job.id, kinds: ['job-restarting'] })).map(
    (e) => (e.data as { backoffSeconds?: number }).backoffSeconds,
  );
}

test('the backoff starts over once an attempt commits a checkpoint past the step it restored', async () => {
  h = await Harness.start({ workers: 1, spares: 0 });
  const job = await h.startJob({
    ranks: { nodes: 1, devicesPerNode: 1 },
    restart: { maxRestarts: 2, backoffSeconds: 2 },
  });
  await h.progress(job.id, 10);
  await committed(h, job, 10, 'L1');
  await crash(h, job, 'failure 1');
  await resume(h, job, 10);
  // Progress: a checkpoint past the restore point. The next fault is a fresh one.
  await committed(h, job, 20, 'L1');
  await crash(h, job, 'failure 2');
  await resume(h, job, 20);
  // A late L2 commit of the step it restored is the previous attempt's work, not progress.
  await committed(h, job, 20, 'L2');
  const third = await crash(h, job, 'failure 3');
  // Before: restart 3 of a lifetime budget of 2 failed the job here, and the backoff was 8 s.
  assert.equal(third.state, 'scheduled', third.reason ?? '');
  assert.equal(third.restarts, 3);
  assert.deepEqual(await backoffs(h, job), [2, 2, 4]);
  const restarting = await h.events({ jobId: job.id, kinds: ['job-restarting'] });
  assert.deepEqual(
    restarting.map((e) => (e.data as { withoutProgress?: number }).withoutProgress),
    [1, 1, 2],
  );
});

test('a crash loop without progress still ends the job after maxRestarts in a row', async () => {
  h = await Harness.start({ workers: 1, spares: 0 });
  const job = await h.startJob({
    ranks: { nodes: 1, devicesPerNode: 1 },
    restart: { maxRestarts: 2, backoffSeconds: 0.5 },
  });
  await h.progress(job.id, 10);
  await committed(h, job, 10, 'L1');
  await crash(h, job, 'failure 1');
  await resume(h, job, 10);
  await committed(h, job, 20, 'L1');
  // Three faults in a row now, each attempt training a little but committing nothing new.
  await crash(h, job, 'failure 2');
  await resume(h, job, 20);
  await crash(h, job, 'failure 3');
  await resume(h, job, 20);
  const final = await crash(h, job, 'failure 4');
  assert.equal(final.state, 'failed');
  assert.equal(final.restarts, 3);
  assert.match(final.reason ?? '', /allows 2 restarts in a row without progress/);
  assert.deepEqual(await backoffs(h, job), [0.5, 0.5, 1]);
});

test('restart.reset never keeps the lifetime count of the restart policy before issue 14', async () => {
  h = await Harness.start({ workers: 1, spares: 0 });
  const job = await h.startJob({
    ranks: { nodes: 1, devicesPerNode: 1 },
    restart: { maxRestarts: 2, backoffSeconds: 2, reset: 'never' },
  });
  await h.progress(job.id, 10);
  await committed(h, job, 10, 'L1');
  await crash(h, job, 'failure 1');
  await resume(h, job, 10);
  await committed(h, job, 20, 'L1');
  await crash(h, job, 'failure 2');
  await resume(h, job, 20);
  await committed(h, job, 30, 'L1');
  const final = await crash(h, job, 'failure 3');
  assert.equal(final.state, 'failed');
  assert.match(final.reason ?? '', /the restart policy allows 2 restarts$/);
  assert.deepEqual(await backoffs(h, job), [2, 4]);
});

test('a restart policy with an unknown reset is refused at restart.reset', () => {
  const spec = {
    name: 'x',
    command: ['true'],
    ranks: { nodes: 1, devicesPerNode: 1 },
    deviceType: 'cpu',
    restart: { reset: 'sometimes' },
  };
  assert.throws(
    () => validateJobSpec(spec),
    (e: unknown) =>
      e instanceof CubeError &&
      (e.where as { path?: string } | undefined)?.path === 'restart.reset',
  );
  assert.equal(
    validateJobSpec({ ...spec, restart: { maxRestarts: 5 } }).restart.reset,
    undefined,
    'absent means progress, and stays absent in stored specs',
  );
});
