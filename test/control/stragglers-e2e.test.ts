// Stragglers end to end, with real processes on loopback: a control plane, three agent
// processes standing in for nodes, a three-rank job whose ranks report their step times through
// the Python client (or, without it, only their steps). One rank is throttled for real by a
// SIGSTOP/SIGCONT duty cycle; the control plane names that rank, and only that one, in a
// `straggler` event.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { formatEvent } from '../../src/cli/commands/control.ts';
import type { ControlPlane } from '../../src/control/control-plane.ts';
import {
  validateJobSpec,
  type EventOf,
  type Job,
  type Node,
} from '../../src/control/model/index.ts';
import { python, repoRoot } from '../python/launcher.ts';
import { startTestCluster, until, type TestCluster } from '../support/test-cluster.ts';
import { dutyCycle, rankPids } from '../support/rank-processes.ts';

let cluster: TestCluster | undefined;
let cp: ControlPlane;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

before(async () => {
  cluster = await startTestCluster('stragglers', { nodes: 3, devicesPerNode: 1, spares: 0 });
  ({ cp } = cluster);
});

after(async () => {
  await cluster?.stop();
});

/**
 * Runs `command` as a three-rank job, throttles rank `victimRank` by a SIGSTOP/SIGCONT duty
 * cycle once every rank is past step 10, and returns the job's straggler events (a few windows
 * after the first) with the throttled rank's node.
 */
async function throttleOneRank(
  name: string,
  command: string[],
  victimRank: number,
): Promise<{ events: EventOf<'straggler'>[]; victim: Node }> {
  const job = await cp.store.createJob(
    validateJobSpec({
      name,
      command,
      workingDir: repoRoot,
      env: { PYTHONDONTWRITEBYTECODE: '1' },
      ranks: { nodes: 3, devicesPerNode: 1 },
      deviceType: 'cpu',
      faults: { straggler: { slowdown: 1.5, windowSteps: 20 } },
    }),
  );
  await until('every rank past step 10', 30_000, async () => {
    const p = await cp.store.listProgress(job.id, { limit: 100_000 });
    const ranks = new Set(p.filter((s) => s.step >= 10).map((s) => s.rank));
    return ranks.size === 3 ? true : null;
  });
  assert.deepEqual(
    await cp.store.listEvents({ jobId: job.id, kinds: ['straggler'] }),
    [],
    'no straggler while every rank runs freely',
  );
  const running = (await cp.store.getJob(job.id)) as Job;
  const victimPlacement = running.placement?.find((p) => p.rank === victimRank);
  assert.ok(victimPlacement);
  const victim = await cp.store.getNode(victimPlacement.nodeId);
  assert.ok(victim);
  const [pid] = rankPids(victim.name, job.id);
  assert.ok(pid !== undefined, 'found the rank process');
  // Stopped 60% of every 100 ms: the rank runs at most 40% of the time.
  const release = dutyCycle(pid, 60, 100);
  try {
    await until('a straggler event', 30_000, async () => {
      const [e] = await cp.store.listEvents({ jobId: job.id, kinds: ['straggler'] });
      return e ?? null;
    });
    // Give any wrongly blamed rank the time of a few more windows to show up.
    await sleep(3000);
  } finally {
    await release();
  }
  const events = await cp.store.listEvents({ jobId: job.id, kinds: ['straggler'] });
  await cp.orchestrator.cancel(job.id);
  return { events: events as EventOf<'straggler'>[], victim };
}

test('a rank throttled for real by a SIGSTOP/SIGCONT duty cycle is reported as a straggler, and no other rank is', async () => {
  const fixture = join(repoRoot, 'test/control/fixtures/stepping-rank.py');
  // About 7 ms of hashing and a 20 ms wait per step, for ever (the test cancels it).
  const { events, victim } = await throttleOneRank(
    'stragglers',
    [python, fixture, '1000000', '20000', '20'],
    1,
  );
  assert.deepEqual(
    events.map((e) => e.rank),
    [1],
    'one event, for the throttled rank only: no other rank, no repeat',
  );
  const found = events[0]!;
  assert.equal(found.rank, 1);
  assert.equal(found.nodeId, victim.id);
  assert.equal(found.data.rank, 1);
  assert.equal(found.data.nodeId, victim.id);
  assert.equal(found.data.node, victim.name);
  assert.ok(found.data.ratio >= 1.5, `ratio ${found.data.ratio}`);
  assert.ok(
    found.data.stepTimeS > found.data.gangMedianS * 1.5,
    `${found.data.stepTimeS} s against ${found.data.gangMedianS} s`,
  );
  assert.equal(found.data.windowSteps, 20);
  const [from = -1, to = -1] = found.data.steps;
  assert.ok(from >= 1 && from <= to, `steps ${from}-${to}`);
  // `cube events` prints the evidence in words.
  assert.match(
    formatEvent(found),
    new RegExp(
      `straggler  \\(node ${victim.id} rank 1\\)  ${victim.name} rank 1: median step \\d+\\.\\d{3} s over steps ${from}-${to} \\(\\d+ samples\\), \\d+\\.\\d{2}x the other ranks' median \\d+\\.\\d{3} s \\(window 20 steps\\)$`,
    ),
  );
});

test('ranks that report no step times are found from their report times, coalesced by the agent', async () => {
  // A rank without the Python client: it reports steps only, one every 25 ms.
  const fixture = join(repoRoot, 'test/control/fixtures/counting-rank.mjs');
  const { events, victim } = await throttleOneRank(
    'stragglers-derived',
    [process.execPath, fixture, '1000000', '25'],
    2,
  );
  assert.deepEqual(
    events.map((e) => [e.rank, e.nodeId]),
    [[2, victim.id]],
  );
  assert.ok(events[0]!.data.ratio >= 1.5, `ratio ${events[0]!.data.ratio}`);
});
