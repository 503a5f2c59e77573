// How the orchestrator judges a fault (issue 14): a real orchestrator and SQLite store, an
// injected clock, fake node reports. A program's own failure restarts the gang in place and
// cordons nothing; blame follows node evidence, never the order of exits; an older attempt's
// exit never faults a newer one; a hang is blamed on the rank that is behind.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { formatEvent } from '../../../src/cli/commands/control.ts';
import { Harness } from './harness.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

test('a rank killed on a healthy node restarts the gang in place: no cordon, no spare taken', async () => {
  h = await Harness.start({ workers: 2, spares: 1 });
  const job = await h.startJob();
  const before = await h.placementNames(job.id);
  await h.progress(job.id, 5);
  await h.exit(job.id, 1, { signal: 'SIGKILL' });

  const relaunched = await h.runUntil('the relaunch', 10_000, async () => {
    const j = await h?.job(job.id);
    return j !== undefined && j.attempt === 1 && j.state === 'scheduled' ? j : null;
  });
  assert.deepEqual(await h.placementNames(job.id), before, 'same nodes, same ranks');
  assert.equal(relaunched.restarts, 1);
  assert.deepEqual(await h.events({ kinds: ['node-cordoned', 'spare-taken'] }), []);
  for (const name of ['node-0', 'node-1', 'spare-0'])
    assert.equal((await h.stored(name)).state, 'ready', name);
  assert.equal((await h.stored('spare-0')).role, 'spare');

  const [fault, ...more] = await h.faults(job.id);
  assert.equal(more.length, 0);
  assert.equal(fault?.classification, 'application');
  assert.equal(fault?.cause, 'rank-exit');
  assert.match(fault?.message ?? '', /rank 1 on node-1 exited by SIGKILL at step 5/);
  assert.deepEqual(
    fault?.blame.map((b) => [b.node, b.blamed]),
    before.map((n) => [n, false]),
  );
  assert.match(fault?.blame.find((b) => b.node === 'node-1')?.why ?? '', /no node evidence/);
  const [restarting] = await h.events({ jobId: job.id, kinds: ['job-restarting'] });
  assert.equal((restarting?.data as { inPlace?: boolean }).inPlace, true);

  // Attempt 1 is launched on both nodes and, restored from L1, trains again.
  await h.run(1000);
  for (const name of before) assert.equal(h.node(name).launches(job.id).at(-1)?.attempt, 1);
  await h.restored(job.id, 4);
  await h.progress(job.id, 5);
  assert.equal((await h.job(job.id)).state, 'running');
});

test('the same failure at the same step after a restore fails the job as a deterministic bug', async () => {
  h = await Harness.start({ workers: 2, spares: 1 });
  const job = await h.startJob({ restart: { maxRestarts: 5, backoffSeconds: 0.5 } });
  const crash = async (lastLine: string): Promise<void> => {
    await h?.progress(job.id, 12);
    await h?.exit(job.id, 0, {
      code: 3,
      lastLines: ['step 12 loss 2.31', `ValueError: ${lastLine}`],
    });
  };
  const relaunch = async (attempt: number): Promise<void> => {
    await h?.runUntil(`attempt ${attempt}`, 10_000, async () =>
      (await h?.job(job.id))?.attempt === attempt && (await h?.currentRanks(job.id))?.length === 2
        ? true
        : null,
    );
    await h?.restored(job.id, 8);
    await h?.progress(job.id, 9);
  };

  await crash('shape mismatch in layer 3');
  await relaunch(1);
  // A different last error line: not the same bug, so the policy restarts it again.
  await crash('CUDA out of memory');
  await relaunch(2);
  await crash('CUDA out of memory');

  const final = await h.runUntil('the job to fail', 10_000, async () => {
    const j = await h?.job(job.id);
    return j?.state === 'failed' ? j : null;
  });
  assert.equal(final.restarts, 2, 'stopped long before maxRestarts (5)');
  assert.match(final.reason ?? '', /exited with code 3 at step 12/);
  assert.match(final.reason ?? '', /ValueError: CUDA out of memory/);
  assert.match(final.reason ?? '', /after restoring step 8: a deterministic failure/);
  assert.deepEqual(await h.events({ kinds: ['node-cordoned', 'spare-taken'] }), []);
});

test('a failure that repeats without a restore in between is left to the restart policy', async () => {
  h = await Harness.start({ workers: 1, spares: 0 });
  const job = await h.startJob({
    ranks: { nodes: 1, devicesPerNode: 1 },
    restart: { maxRestarts: 1, backoffSeconds: 0.5 },
  });
  await h.exit(job.id, 0, { code: 3, lastLines: ['boom'] });
  await h.runUntil('attempt 1', 10_000, async () =>
    (await h?.currentRanks(job.id))?.some((r) => r.rank.attempt === 1) === true ? true : null,
  );
  await h.exit(job.id, 0, { code: 3, lastLines: ['boom'] });
  const final = await h.runUntil('the job to fail', 10_000, async () => {
    const j = await h?.job(job.id);
    return j?.state === 'failed' ? j : null;
  });
  assert.match(final.reason ?? '', /exited with code 3.*restart policy allows 1 restart/);
  assert.equal((await h.stored('node-0')).state, 'ready');
});

test("a silent node is blamed and the survivor is not, even when the survivor's rank exited first", async () => {
  h = await Harness.start({ workers: 2, spares: 1 });
  const job = await h.startJob();
  await h.progress(job.id, 20);
  // node-1 dies: no more heartbeats. Its collective peer, rank 0 on node-0, notices first and
  // exits with code 1 while node-1 is still within its heartbeat interval.
  h.node('node-1').alive = false;
  await h.run(250);
  await h.exit(job.id, 0, { code: 1, lastLines: ['RuntimeError: Connection reset by peer'] });
  // Before the fix the exit was blamed after its 1.5 s settle window on node-0, the only node
  // that had shown anything; node-1 was not yet silent then.
  const faulted = await h.runUntil('the fault', 10_000, async () => {
    const f = await h?.faults(job.id);
    return f !== undefined && f.length > 0 ? f : null;
  });
  assert.equal(faulted.length, 1);
  const [fault] = faulted;
  assert.equal(fault?.nodeId, h.node('node-1').id, 'the fault is on the silent node');
  assert.equal(fault?.classification, 'node');
  const blame = new Map(fault?.blame.map((b) => [b.node, b]));
  assert.equal(blame.get('node-1')?.blamed, true);
  assert.match(blame.get('node-1')?.why ?? '', /missed heartbeats/);
  assert.equal(blame.get('node-0')?.blamed, false);
  assert.match(blame.get('node-0')?.why ?? '', /rank 0 exited with code 1.*no node evidence/);

  await h.runUntil('the relaunch on the spare', 10_000, async () =>
    (await h?.job(job.id))?.attempt === 1 ? true : null,
  );
  assert.deepEqual(await h.placementNames(job.id), ['node-0', 'spare-0']);
  assert.equal((await h.stored('node-0')).state, 'ready');
  assert.notEqual((await h.stored('node-1')).state, 'ready');
});

test('an exit of attempt N still settling when attempt N+1 launches does not fault attempt N+1', async () => {
  // The campaign's bug: node-1 dies; rank 0 on node-0 exits with code 1 inside the settle
  // window before node-1's heartbeat timeout fires; the recovery relaunches at once; then the
  // pending exit was blamed on the new attempt: an extra restart and a healthy node cordoned.
  h = await Harness.start({ workers: 2, spares: 2, exitSettleMs: 3000 });
  const job = await h.startJob({
    restart: { maxRestarts: 3, backoffSeconds: 0 },
    faults: { heartbeatTimeoutSeconds: 2, hangTimeoutSeconds: 30 },
  });
  await h.progress(job.id, 10);
  h.node('node-1').alive = false;
  await h.run(1250);
  await h.exit(job.id, 0, { code: 1 });
  await h.runUntil('attempt 1 to launch', 10_000, async () =>
    (await h?.job(job.id))?.attempt === 1 ? true : null,
  );
  // Past the settle window of attempt 0's exit, with attempt 1 training.
  await h.run(1000);
  await h.progress(job.id, 8);
  await h.run(4000);

  const final = await h.job(job.id);
  assert.equal(final.attempt, 1);
  assert.equal(final.restarts, 1);
  assert.equal(final.state, 'running');
  assert.equal((await h.stored('node-0')).state, 'ready');
  assert.equal((await h.events({ kinds: ['spare-taken'] })).length, 1);
  assert.equal((await h.faults(job.id)).length, 1);
});

test('a hang is blamed on the rank behind the others, not on the one that went quiet first', async () => {
  h = await Harness.start({ workers: 2, spares: 1 });
  const job = await h.startJob({ faults: { heartbeatTimeoutSeconds: 5, hangTimeoutSeconds: 10 } });
  await h.progress(job.id, 40);
  // Rank 0 finishes step 41 and then blocks in its collective, waiting for rank 1, which is
  // stopped at step 40; rank 1's report of step 40 reached the control plane later than rank
  // 0's, so by the clock rank 0 went quiet first.
  await h.progress(job.id, 41, [0]);
  await h.run(500);
  await h.progress(job.id, 40, [1]);
  await h.runUntil('the hang', 20_000, async () =>
    (await h?.faults(job.id))?.length === 1 ? true : null,
  );
  const [fault] = await h.faults(job.id);
  assert.equal(fault?.cause, 'hang');
  assert.equal(fault?.nodeId, h.node('node-1').id);
  assert.match(fault?.message ?? '', /rank 1 made no progress/);
  const blame = new Map(fault?.blame.map((b) => [b.node, b]));
  assert.equal(blame.get('node-1')?.blamed, true);
  assert.match(
    blame.get('node-1')?.why ?? '',
    /rank 1 is at step 40 while other ranks reached step 41/,
  );
  assert.equal(blame.get('node-0')?.blamed, false);
  assert.equal((await h.stored('node-0')).state, 'ready');
  assert.equal((await h.stored('node-1')).state, 'cordoned');
});

test('a hang the evidence cannot pin on one rank is unknown and restarts in place', async () => {
  h = await Harness.start({ workers: 2, spares: 1 });
  const job = await h.startJob({ faults: { heartbeatTimeoutSeconds: 5, hangTimeoutSeconds: 10 } });
  await h.progress(job.id, 40);
  await h.runUntil('the hang', 20_000, async () =>
    (await h?.faults(job.id))?.length === 1 ? true : null,
  );
  const [fault] = await h.faults(job.id);
  assert.equal(fault?.classification, 'unknown');
  assert.match(fault?.message ?? '', /all stopped at step 40/);
  assert.ok(fault?.blame.every((b) => !b.blamed));
  await h.runUntil('the relaunch', 10_000, async () =>
    (await h?.job(job.id))?.attempt === 1 ? true : null,
  );
  assert.deepEqual(await h.placementNames(job.id), ['node-0', 'node-1']);
  assert.deepEqual(await h.events({ kinds: ['node-cordoned', 'spare-taken'] }), []);
});

test('a failing probe is node evidence: the node is cordoned and replaced from the spares', async () => {
  h = await Harness.start({ workers: 2, spares: 1 });
  const job = await h.startJob();
  await h.progress(job.id, 3);
  h.node('node-0').probes = [{ name: 'ecc', ok: false, message: 'uncorrectable ECC error' }];
  await h.runUntil('the relaunch', 10_000, async () =>
    (await h?.job(job.id))?.attempt === 1 ? true : null,
  );
  const [fault] = await h.faults(job.id);
  assert.equal(fault?.classification, 'node');
  assert.equal(fault?.cause, 'probe-failed');
  assert.equal((await h.stored('node-0')).state, 'cordoned');
  assert.deepEqual(await h.placementNames(job.id), ['spare-0', 'node-1']);
});

test('cube events prints under a fault why each node was or was not blamed', async () => {
  h = await Harness.start({ workers: 2, spares: 1 });
  const job = await h.startJob();
  await h.progress(job.id, 7);
  h.node('node-0').alive = false;
  await h.runUntil('the fault', 15_000, async () =>
    (await h?.faults(job.id))?.length === 1 ? true : null,
  );
  const [event] = await h.events({ jobId: job.id, kinds: ['fault-detected'] });
  assert.ok(event);
  const lines = formatEvent(event).split('\n');
  assert.match(lines[0] ?? '', /fault-detected .*cause=heartbeat-timeout .*classification=node/);
  assert.doesNotMatch(lines[0] ?? '', /blame=/);
  assert.match(lines[1] ?? '', /^\s+node-0: blamed \(node-0 missed heartbeats for \d+ s/);
  assert.match(lines[2] ?? '', /^\s+node-1: not blamed \(heartbeats on time, probes passing/);
});

test("a rank's exit on a node reporting a failed device is a node fault: that node is blamed and replaced", async () => {
  h = await Harness.start({ workers: 2, spares: 1 });
  const job = await h.startJob();
  await h.progress(job.id, 9);
  h.node('node-1').devices = [
    { index: 0, kind: 'cpu', model: 'x86-64', memoryBytes: 2 ** 30, health: 'failed' },
  ];
  await h.run(1000);
  await h.exit(job.id, 1, { code: 1, lastLines: ['RuntimeError: uncorrectable ECC error'] });
  await h.runUntil('the relaunch', 10_000, async () =>
    (await h?.job(job.id))?.attempt === 1 ? true : null,
  );
  const [fault] = await h.faults(job.id);
  assert.equal(fault?.classification, 'node');
  assert.equal(fault?.cause, 'device-failed');
  assert.match(fault?.blame.find((b) => b.node === 'node-1')?.why ?? '', /device 0 failed/);
  assert.equal((await h.stored('node-1')).state, 'cordoned');
  assert.deepEqual(await h.placementNames(job.id), ['node-0', 'spare-0']);
});
