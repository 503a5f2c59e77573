// The straggler policy's `replace` action in the orchestrator, with a real SQLite store, an
// injected clock and fake node reports: the straggler's node is swapped for a spare at the next
// L2/L3 checkpoint commit, never for a fault and never without a spare to take its place.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import type { Job, JobSpecInput } from '../../src/control/model/index.ts';
import { Harness } from './orchestrator/harness.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Every running rank of the job reports `step`; rank 1 takes 3 times as long as the others. */
async function steps(harness: Harness, job: Job, from: number, to: number): Promise<void> {
  for (let step = from; step <= to; step++) {
    harness.clockMs += 100;
    for (const { node, rank } of await harness.currentRanks(job.id)) {
      if (rank.state !== 'running') continue;
      const stored = await harness.store.getNode(node.id);
      assert.ok(stored);
      await harness.orchestrator.agentEvents(stored, [
        {
          kind: 'progress',
          jobId: job.id,
          attempt: rank.attempt,
          rank: rank.rank,
          step,
          loss: null,
          tokensPerS: null,
          stepTimeS: rank.rank === 1 ? 0.3 : 0.1,
        },
      ]);
    }
  }
}

/** `nodeId`'s daemon commits its shards of `step` at `level`. */
async function commit(
  harness: Harness,
  job: Job,
  level: 'L1' | 'L2',
  step: number,
  nodeId: string,
) {
  const node = await harness.store.getNode(nodeId);
  assert.ok(node);
  await harness.orchestrator.agentEvents(node, [
    { kind: 'checkpoint-committed', jobId: job.id, level, step },
  ]);
}

const spec = (action: 'report' | 'replace'): Partial<JobSpecInput> => ({
  ranks: { nodes: 3, devicesPerNode: 1 },
  faults: {
    heartbeatTimeoutSeconds: 5,
    hangTimeoutSeconds: 30,
    straggler: { slowdown: 1.5, windowSteps: 10, action },
  },
});

test("with action replace, a straggler's node is swapped for a spare at the next L2 commit and the gang relaunched, with no fault counted", async () => {
  h = await Harness.start({ workers: 3, spares: 1 });
  const job = await h.startJob(spec('replace'));
  await steps(h, job, 1, 25);
  const [found] = await h.events({ jobId: job.id, kinds: ['straggler'] });
  assert.ok(found);
  assert.equal(found.rank, 1);
  const stragglerNode = found.nodeId;
  assert.ok(stragglerNode);
  // Found, but the job runs on until a checkpoint that outlives the node: L1 is not one, and
  // neither is another node's L2 (each node's daemon replicates its own shards).
  await commit(h, job, 'L1', 20, stragglerNode);
  const other = (await h.currentRanks(job.id)).find((r) => r.node.id !== stragglerNode);
  assert.ok(other);
  await commit(h, job, 'L2', 20, other.node.id);
  await h.run(1000);
  assert.equal((await h.job(job.id)).state, 'running');
  assert.deepEqual(await h.events({ kinds: ['node-cordoned'] }), []);

  await commit(h, job, 'L2', 20, stragglerNode);
  const [cordoned] = await h.events({ kinds: ['node-cordoned'] });
  assert.ok(cordoned);
  assert.equal(cordoned?.nodeId, stragglerNode);
  assert.equal((cordoned.data as { by?: string }).by, 'straggler');
  assert.match(
    (cordoned.data as { reason?: string }).reason ?? '',
    /rank 1 on node-\d is a straggler: its node is replaced from a spare, resuming from the L2 checkpoint of step 20/,
  );
  const relaunched = await h.runUntil('the relaunch', 5000, async () => {
    const j = await h?.job(job.id);
    return j?.attempt === 1 && j.state !== 'recovering' ? j : null;
  });
  const names = await h.placementNames(job.id);
  assert.ok(names.includes('spare-0'), `placement ${names.join(', ')}`);
  assert.equal(
    relaunched.placement?.find((p) => p.rank === 1)?.nodeId,
    (await h.stored('spare-0')).id,
    'the spare took the straggler rank',
  );
  assert.equal(relaunched.restarts, 0, 'a planned replacement is not a restart');
  assert.deepEqual(await h.events({ jobId: job.id, kinds: ['fault-detected'] }), []);
  const [restarting] = await h.events({ jobId: job.id, kinds: ['job-restarting'] });
  assert.equal((restarting?.data as { inPlace?: boolean }).inPlace, false);
});

test('with action replace but no spare ready, the straggler keeps running and is replaced at a commit after a spare joins', async () => {
  h = await Harness.start({ workers: 3, spares: 0 });
  const job = await h.startJob(spec('replace'));
  await steps(h, job, 1, 25);
  const [found] = await h.events({ jobId: job.id, kinds: ['straggler'] });
  assert.ok(found?.nodeId);
  await commit(h, job, 'L2', 20, found.nodeId);
  await h.run(1000);
  assert.equal((await h.job(job.id)).state, 'running', 'not stopped to wait for a spare');
  assert.deepEqual(await h.events({ kinds: ['node-cordoned'] }), []);

  await h.addSpare('spare-9');
  await h.run(1000);
  await steps(h, job, 26, 30);
  await commit(h, job, 'L2', 30, found.nodeId);
  await h.runUntil('the relaunch on the new spare', 5000, async () =>
    (await h?.job(job.id))?.attempt === 1 ? true : null,
  );
  assert.ok((await h.placementNames(job.id)).includes('spare-9'));
});

test('with the default action, a straggler is reported and nothing else happens', async () => {
  h = await Harness.start({ workers: 3, spares: 1 });
  const job = await h.startJob(spec('report'));
  await steps(h, job, 1, 25);
  const [found] = await h.events({ jobId: job.id, kinds: ['straggler'] });
  assert.ok(found?.nodeId);
  await commit(h, job, 'L2', 20, found.nodeId);
  await h.run(2000);
  const after = await h.job(job.id);
  assert.equal(after.state, 'running');
  assert.equal(after.attempt, 0);
  assert.deepEqual(await h.events({ kinds: ['node-cordoned', 'spare-taken'] }), []);
});
