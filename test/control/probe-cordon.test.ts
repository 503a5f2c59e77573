// A failing health probe, end to end: real agent processes run `--probe-command`, a check that
// fails once the test drops a marker file for that node. The control plane cordons the node,
// says why in the event log, and moves the job that ran there to the hot spare; an idle node
// whose probe fails is cordoned too, with nothing to recover.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ControlPlane } from '../../src/control/control-plane.ts';
import { validateJobSpec, type Event, type Job } from '../../src/control/model/index.ts';
import { startTestCluster, until, type TestCluster } from '../support/test-cluster.ts';

const countingRank = fileURLToPath(new URL('./fixtures/counting-rank.mjs', import.meta.url));

let cluster: TestCluster | undefined;
let dataDir: string;
let markers: string;
let cp: ControlPlane;

/** Makes the probe of node `name` fail from its next check on. */
function breakProbe(name: string): void {
  writeFileSync(join(markers, `fail-${name}`), 'broken by the test\n');
}

before(async () => {
  // The markers live beside the cluster's data; a probe finds no marker until the test drops one.
  markers = mkdtempSync(join(tmpdir(), 'cube-e2e-probe-markers-'));
  cluster = await startTestCluster('probe', {
    nodes: 2,
    devicesPerNode: 1,
    spares: 1,
    probeIntervalMs: 300,
    probeCommand: (name) => {
      const marker = join(markers, `fail-${name}`);
      return `if [ -e '${marker}' ]; then echo "ECC errors on ${name}"; exit 1; fi`;
    },
  });
  ({ cp, dataDir } = cluster);
});

after(async () => {
  await cluster?.stop();
  rmSync(markers, { recursive: true, force: true });
});

test('a node whose probe starts failing is cordoned with the reason and its job recovers on the spare', async () => {
  const job = await cp.store.createJob(
    validateJobSpec({
      name: 'probe-victim',
      command: [process.execPath, countingRank, '40', '150'],
      workingDir: dataDir,
      ranks: { nodes: 2, devicesPerNode: 1 },
      deviceType: 'cpu',
      restart: { maxRestarts: 2, backoffSeconds: 0.2 },
      faults: { heartbeatTimeoutSeconds: 3, hangTimeoutSeconds: 60 },
    }),
  );
  await until('the job to run', 30_000, async () =>
    (await cp.store.getJob(job.id))?.state === 'running' ? true : null,
  );
  const running = (await cp.store.getJob(job.id)) as Job;
  const victimId = running.placement?.find((p) => p.rank === 1)?.nodeId ?? '';
  const victim = await cp.store.getNode(victimId);
  assert.ok(victim !== null && victim.role === 'worker');
  breakProbe(victim.name);

  const final = await until('the job to end', 60_000, async () => {
    const j = await cp.store.getJob(job.id);
    return j !== null && ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : null;
  });
  assert.equal(final.state, 'succeeded', final.reason ?? '');
  assert.equal(final.restarts, 1);
  assert.ok(
    final.placement?.every((p) => p.nodeId !== victim.id),
    'the cordoned node runs nothing',
  );

  const node = await cp.store.getNode(victim.id);
  assert.equal(node?.state, 'cordoned');
  const cordoned = await cp.store.listEvents({ kinds: ['node-cordoned'] });
  assert.equal(cordoned.length, 1, 'cordoned once');
  assert.equal(cordoned[0]?.nodeId, victim.id);
  const data = cordoned[0]?.data as { reason?: string; by?: string };
  assert.equal(data.by, 'fault');
  assert.match(data.reason ?? '', new RegExp(`command: .*ECC errors on ${victim.name}`));

  const faults = await cp.store.listEvents({ jobId: job.id, kinds: ['fault-detected'] });
  assert.equal(faults.length, 1);
  assert.equal((faults[0]?.data as { cause?: string }).cause, 'probe-failed');
  const spare = await cp.store.listEvents({ kinds: ['spare-taken'] });
  assert.equal(spare.length, 1);
  assert.equal((spare[0]?.data as { replacesNodeId?: string }).replacesNodeId, victim.id);
  const kinds = (await cp.store.listEvents({ jobId: job.id })).map((e: Event) => e.kind);
  for (const kind of ['job-restarting', 'job-resumed', 'job-succeeded'] as const)
    assert.ok(kinds.includes(kind), `event ${kind} in ${kinds.join(', ')}`);
});

test('an idle node whose probe fails is cordoned, with the probe named as the cause', async () => {
  const idle = (await cp.store.listNodes()).find((n) => n.state === 'ready');
  assert.ok(idle, 'a ready node is left');
  const before = (await cp.store.listEvents({ kinds: ['node-cordoned'] })).length;
  breakProbe(idle.name);
  await until('the node to be cordoned', 20_000, async () =>
    (await cp.store.getNode(idle.id))?.state === 'cordoned' ? true : null,
  );
  const cordoned = await cp.store.listEvents({ kinds: ['node-cordoned'] });
  assert.equal(cordoned.length, before + 1);
  assert.match(
    (cordoned.at(-1)?.data as { reason?: string }).reason ?? '',
    /command: .*ECC errors/,
  );
  const [fault] = (await cp.store.listEvents({ kinds: ['fault-detected'] })).filter(
    (e) => e.nodeId === idle.id,
  );
  assert.equal((fault?.data as { cause?: string } | undefined)?.cause, 'probe-failed');
  assert.equal(fault?.jobId, undefined);
});
