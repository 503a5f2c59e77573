// The per-job series read from a real SQLite store with an injected clock: combined over ranks,
// following restarts, aging checkpoints, and dropped once a finished job's retention is over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateJobSpec } from '../../src/control/model/index.ts';
import { createMetrics } from '../../src/control/server/metrics.ts';
import { openSqliteStore } from '../../src/control/store/index.ts';
import { find, promtoolFindings, value } from './metrics-text.ts';

test("a job's series combine its ranks, count its restarts, age its checkpoints, and go once it has been finished longer than the retention", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cube-metrics-jobs-'));
  const store = await openSqliteStore({ path: join(dir, 'cube.db') });
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  // The store stamps events with the real time; the scrape's clock starts there and moves on.
  let now = Date.now();
  const metrics = createMetrics({ store, now: () => now, jobRetentionMs: 60_000 });
  const scrape = (): Promise<string> => metrics.registry.metrics();

  const job = await store.createJob(
    validateJobSpec({
      name: 'train-a',
      command: ['python', 'train.py'],
      ranks: { nodes: 1, devicesPerNode: 2 },
      deviceType: 'cpu',
    }),
    { now },
  );
  const labels = { job_id: job.id, job_name: 'train-a' };
  let text = await scrape();
  assert.equal(find(text, 'cube_job_step', labels).length, 0, 'no step before any report');
  assert.equal(value(text, 'cube_job_restarts_total', labels), 0);

  const sample = (attempt: number, rank: number, step: number, loss: number): object => ({
    jobId: job.id,
    attempt,
    rank,
    step,
    loss,
    tokensPerS: 1000,
    at: now,
  });
  await store.recordProgress([
    sample(0, 0, 1, 4),
    sample(0, 1, 1, 2),
    sample(0, 0, 2, 3),
    sample(0, 1, 2, 1),
    // Rank 1 has not reported step 3 yet: step 2 is the newest complete one.
    sample(0, 0, 3, 2),
  ] as never);
  await store.recordCheckpoint({ jobId: job.id, step: 2, level: 'L1', at: now }, [
    { kind: 'checkpoint-committed', jobId: job.id, data: { level: 'L1', step: 2 } },
  ]);
  now += 30_000;
  text = await scrape();
  assert.equal(value(text, 'cube_job_step', labels), 2);
  assert.equal(value(text, 'cube_job_loss', labels), 2, 'the mean of 3 and 1');
  assert.equal(value(text, 'cube_job_tokens_per_second', labels), 2000, 'the sum over ranks');
  assert.equal(value(text, 'cube_job_checkpoint_step', { ...labels, level: 'L1' }), 2);
  const age = value(text, 'cube_job_checkpoint_age_seconds', { ...labels, level: 'L1' });
  assert.ok(age >= 29 && age < 40, `the L1 checkpoint is 30 s old, not ${age}`);
  assert.equal(find(text, 'cube_job_checkpoint_age_seconds', { level: 'L2' }).length, 0);

  // A fault: attempt 1 restarts from step 2 and reports step 3 on both ranks.
  await store.updateJob(job.id, { attempt: 1, restarts: 1 });
  text = await scrape();
  assert.equal(value(text, 'cube_job_step', labels), 2, 'the last figures stand until it reports');
  assert.equal(value(text, 'cube_job_restarts_total', labels), 1);
  await store.recordProgress([sample(1, 0, 3, 0.5), sample(1, 1, 3, 0.5)] as never);
  text = await scrape();
  assert.equal(value(text, 'cube_job_step', labels), 3);
  assert.equal(value(text, 'cube_job_loss', labels), 0.5);
  assert.equal(promtoolFindings(text), '');

  await store.updateJob(job.id, { state: 'cancelled', endedAt: now });
  now += 59_000;
  assert.equal(find(await scrape(), 'cube_job_step', labels).length, 1, 'kept within retention');
  now += 2_000;
  text = await scrape();
  for (const name of ['cube_job_step', 'cube_job_loss', 'cube_job_restarts_total'])
    assert.equal(find(text, name, labels).length, 0, `${name} dropped after the retention`);
  assert.equal(find(text, 'cube_job_checkpoint_age_seconds', labels).length, 0);
  assert.equal(promtoolFindings(text), '');
});
