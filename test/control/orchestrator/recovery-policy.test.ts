// The orchestrator's recovery under its restart policy (issue 14): spare exhaustion, faults
// during a recovery, double faults, backoff timing and cancellation, with a real SQLite store,
// an injected clock and fake node reports.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { Harness } from './harness.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

test('with no spare left the job waits in recovery with the reason, and resumes when a node joins', async () => {
  h = await Harness.start({ workers: 2, spares: 1 });
  const job = await h.startJob({ restart: { maxRestarts: 5, backoffSeconds: 0.5 } });
  await h.progress(job.id, 4);
  h.node('node-1').alive = false;
  await h.runUntil('the first recovery', 15_000, async () =>
    (await h?.job(job.id))?.attempt === 1 ? true : null,
  );
  assert.deepEqual(await h.placementNames(job.id), ['node-0', 'spare-0']);
  await h.progress(job.id, 4);
  // The spare dies too: nothing is left to take its rank.
  h.node('spare-0').alive = false;
  const waiting = await h.runUntil('the job to wait', 15_000, async () => {
    const j = await h?.job(job.id);
    return j?.state === 'recovering' && (j.reason ?? '').includes('no node') ? j : null;
  });
  assert.match(waiting.reason ?? '', /rank 1/);
  const [waited] = await h.events({ jobId: job.id, kinds: ['job-waiting'] });
  assert.equal((waited?.data as { reason?: string }).reason, waiting.reason);
  // It keeps waiting, without relaunching and without piling up events.
  await h.run(10_000);
  assert.equal((await h.job(job.id)).attempt, 1);
  assert.equal((await h.events({ jobId: job.id, kinds: ['job-waiting'] })).length, 1);

  await h.addSpare('spare-9');
  await h.runUntil('the relaunch on the new spare', 5000, async () =>
    (await h?.job(job.id))?.attempt === 2 ? true : null,
  );
  assert.deepEqual(await h.placementNames(job.id), ['node-0', 'spare-9']);
});

test('a node fault during the backoff of a recovery replaces that node too, in the same relaunch', async () => {
  h = await Harness.start({ workers: 2, spares: 2 });
  const job = await h.startJob({ restart: { maxRestarts: 3, backoffSeconds: 8 } });
  await h.progress(job.id, 6);
  h.node('node-1').alive = false;
  await h.runUntil('the recovery', 15_000, async () =>
    (await h?.job(job.id))?.state === 'recovering' ? true : null,
  );
  // While the job waits out its backoff, node-0's device fails its probe.
  h.node('node-0').probes = [{ name: 'xid', ok: false, message: 'Xid 79: fell off the bus' }];
  await h.run(2000);
  assert.equal((await h.stored('node-0')).state, 'cordoned');
  assert.equal((await h.job(job.id)).state, 'recovering');
  await h.runUntil('the relaunch', 15_000, async () =>
    (await h?.job(job.id))?.attempt === 1 ? true : null,
  );
  const final = await h.job(job.id);
  assert.equal(final.restarts, 1, 'one recovery for both faults');
  assert.deepEqual([...(await h.placementNames(job.id))].sort(), ['spare-0', 'spare-1']);
  assert.equal((await h.events({ kinds: ['spare-taken'] })).length, 2);
  const causes = (await h.faults(job.id)).map((f) => [f.cause, f.classification]);
  assert.deepEqual(causes, [
    ['heartbeat-timeout', 'node'],
    ['probe-failed', 'node'],
  ]);
});

test('two nodes lost at once are both blamed and both replaced in one restart', async () => {
  h = await Harness.start({ workers: 2, spares: 2 });
  const job = await h.startJob();
  await h.progress(job.id, 6);
  h.node('node-0').alive = false;
  h.node('node-1').alive = false;
  await h.runUntil('the relaunch', 20_000, async () =>
    (await h?.job(job.id))?.attempt === 1 ? true : null,
  );
  const final = await h.job(job.id);
  assert.equal(final.restarts, 1);
  assert.deepEqual(await h.placementNames(job.id), ['spare-0', 'spare-1']);
  const faults = await h.faults(job.id);
  assert.deepEqual(
    faults.map((f) => f.nodeId).sort(),
    [h.node('node-0').id, h.node('node-1').id].sort(),
  );
  assert.ok(faults.every((f) => f.classification === 'node'));
  for (const name of ['node-0', 'node-1']) assert.equal((await h.stored(name)).state, 'down');
});

test('the backoff doubles with each restart, measured on the clock', async () => {
  h = await Harness.start({ workers: 1, spares: 0 });
  const job = await h.startJob({
    ranks: { nodes: 1, devicesPerNode: 1 },
    restart: { maxRestarts: 4, backoffSeconds: 2 },
  });
  const gaps: number[] = [];
  for (let attempt = 1; attempt <= 3; attempt++) {
    await h.progress(job.id, attempt);
    await h.exit(job.id, 0, { code: 1, lastLines: [`failure ${attempt}`] });
    const faultAt = await h.runUntil('the fault', 5000, async () => {
      const j = await h?.job(job.id);
      return j?.state === 'recovering' ? (h?.clockMs ?? null) : null;
    });
    const launchedAt = await h.runUntil('the relaunch', 60_000, async () =>
      (await h?.job(job.id))?.attempt === attempt ? (h?.clockMs ?? null) : null,
    );
    gaps.push(launchedAt - faultAt);
    await h.run(1000);
  }
  // 2 s, 4 s, 8 s, each within one tick (250 ms) of its due time.
  for (const [i, expected] of [2000, 4000, 8000].entries()) {
    assert.ok(
      (gaps[i] ?? 0) >= expected && (gaps[i] ?? 0) <= expected + 250,
      `restart ${i + 1} relaunched ${gaps[i]} ms after its fault, not ${expected}`,
    );
  }
  const backoffs = (await h.events({ jobId: job.id, kinds: ['job-restarting'] })).map(
    (e) => (e.data as { backoffSeconds?: number }).backoffSeconds,
  );
  assert.deepEqual(backoffs, [2, 4, 8]);
});

test('a job cancelled during its recovery stays cancelled: no relaunch, no spare taken', async () => {
  h = await Harness.start({ workers: 2, spares: 1 });
  const job = await h.startJob({ restart: { maxRestarts: 3, backoffSeconds: 4 } });
  await h.progress(job.id, 6);
  h.node('node-1').alive = false;
  await h.runUntil('the recovery', 15_000, async () =>
    (await h?.job(job.id))?.state === 'recovering' ? true : null,
  );
  const cancelled = await h.orchestrator.cancel(job.id);
  assert.equal(cancelled.state, 'cancelled');
  await h.run(15_000);
  const final = await h.job(job.id);
  assert.equal(final.state, 'cancelled');
  assert.equal(final.attempt, 0);
  assert.deepEqual(await h.events({ kinds: ['spare-taken'] }), []);
  assert.equal((await h.stored('spare-0')).role, 'spare');
  assert.ok(
    h.nodes.every((n) => n.launches(job.id).every((c) => c.attempt === 0)),
    'nothing relaunched',
  );
  assert.ok(
    h.node('node-0').commands.some((c) => c.kind === 'kill' && c.jobId === job.id),
    'the survivor was told to stop its ranks',
  );
});

test('a control-plane restart during a recovery finishes it once: the spare takes the lost rank, nothing relaunches twice', async () => {
  h = await Harness.start({ workers: 2, spares: 1 });
  const job = await h.startJob({ restart: { maxRestarts: 3, backoffSeconds: 4 } });
  await h.progress(job.id, 6);
  h.node('node-1').alive = false;
  await h.runUntil('the recovery', 15_000, async () =>
    (await h?.job(job.id))?.state === 'recovering' ? true : null,
  );
  assert.equal((await h.job(job.id)).attempt, 0, 'still in the backoff, not yet relaunched');
  // The server dies and comes back: its memory (the recovery plan, the outbox, heartbeat
  // times) is gone; the store has the job in `recovering` and node-1 down.
  h.restartOrchestrator();
  const relaunched = await h.runUntil('the relaunch after the restart', 20_000, async () => {
    const j = await h?.job(job.id);
    return j !== undefined && j.attempt === 1 && j.state !== 'recovering' ? j : null;
  });
  assert.deepEqual(await h.placementNames(job.id), ['node-0', 'spare-0']);
  assert.equal(relaunched.restarts, 1);
  await h.runUntil('both nodes to get the new launch', 5000, async () =>
    (await h?.currentRanks(job.id))?.filter((r) => r.rank.attempt === 1).length === 2 ? true : null,
  );
  await h.progress(job.id, 8);
  await h.runUntil('the job to run again', 5000, async () =>
    (await h?.job(job.id))?.state === 'running' ? true : null,
  );
  await h.run(10_000);
  const final = await h.job(job.id);
  assert.equal(final.attempt, 1, 'one relaunch, not two');
  assert.equal((await h.events({ jobId: job.id, kinds: ['spare-taken'] })).length, 1);
  assert.equal(h.node('spare-0').launches(job.id).length, 1);
  assert.notEqual((await h.stored('node-1')).state, 'ready');
});

test('a control plane that takes long to start listening gives every node a full heartbeat timeout from when it listens', async () => {
  h = await Harness.start({ workers: 2, spares: 1 });
  const job = await h.startJob();
  await h.progress(job.id, 6);
  // Killed and started again; building the app and binding the port take 8 s under load (a
  // chaos campaign saw this): no heartbeat can arrive before the server listens.
  h.restartOrchestrator();
  h.clockMs += 8000;
  h.orchestrator.serving();
  // The first tick comes before the agents' next retries land; it must not count the 8 s.
  await h.orchestrator.tick();
  await h.run(3000);
  assert.deepEqual(await h.events({ kinds: ['node-down'] }), []);
  assert.deepEqual(await h.faults(job.id), []);
  assert.equal((await h.job(job.id)).attempt, 0);
});
