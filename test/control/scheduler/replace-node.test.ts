import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  placeJob,
  replaceNode,
  type Allocation,
  type Placement,
  type SchedulerNode,
} from '../../../src/control/scheduler/index.ts';
import { cluster, job, node } from './helpers.ts';

const spec = job({ id: 'j-train', nodes: 2 });

/** Places the job on sn0 of a two-super-node cluster, then the extra nodes join. */
function setUp(extra: readonly SchedulerNode[]): {
  nodes: SchedulerNode[];
  placement: Placement;
  allocations: Allocation[];
} {
  const base = cluster({ superNodes: 2, nodesPerSuperNode: 2 });
  const allocations: Allocation[] = [{ jobId: 'j-other', nodeIds: ['id-sn1-n0', 'id-sn1-n1'] }];
  const result = placeJob({ job: spec, nodes: base, allocations });
  assert.equal(result.kind, 'placed');
  const placement = (result as { placement: Placement }).placement;
  assert.deepEqual(
    placement.nodes.map((n) => n.nodeName),
    ['sn0-n0', 'sn0-n1'],
  );
  return {
    nodes: [...base, ...extra],
    placement,
    allocations: [
      ...allocations,
      { jobId: spec.id, nodeIds: placement.nodes.map((n) => n.nodeId) },
    ],
  };
}

test('a failed node is replaced by a hot spare in its own super-node first', () => {
  const { nodes, placement, allocations } = setUp([
    node({ name: 'free-worker', superNode: 'sn0' }),
    node({ name: 'spare-a', superNode: 'sn1', role: 'spare' }),
    node({ name: 'spare-b', superNode: 'sn0', role: 'spare' }),
  ]);
  const r = replaceNode({ job: spec, placement, failedNodeId: 'id-sn0-n1', nodes, allocations });
  assert.equal(r.kind, 'replaced');
  assert.deepEqual(r.kind === 'replaced' && [r.nodeId, r.source], ['id-spare-b', 'spare']);
  assert.equal(
    r.kind === 'replaced' && r.explanation,
    'spare-b (hot spare in sn0, the failed node’s super-node) takes ranks 2-3 of sn0-n1',
  );
});

test('a spare in another super-node is taken before a free worker in the same one', () => {
  const { nodes, placement, allocations } = setUp([
    node({ name: 'free-worker', superNode: 'sn0' }),
    node({ name: 'spare-a', superNode: 'sn1', role: 'spare' }),
    node({ name: 'spare-down', superNode: 'sn0', role: 'spare', state: 'down' }),
  ]);
  const r = replaceNode({ job: spec, placement, failedNodeId: 'id-sn0-n0', nodes, allocations });
  assert.deepEqual(r.kind === 'replaced' && [r.nodeName, r.source], ['spare-a', 'spare']);
});

test('the replacement runs the failed node’s rank numbers with the same local ranks', () => {
  const { nodes, placement, allocations } = setUp([
    node({ name: 'spare-a', superNode: 'sn0', role: 'spare' }),
  ]);
  const r = replaceNode({ job: spec, placement, failedNodeId: 'id-sn0-n1', nodes, allocations });
  assert.deepEqual(r.kind === 'replaced' && r.ranks, [
    { rank: 2, nodeId: 'id-spare-a', localRank: 0 },
    { rank: 3, nodeId: 'id-spare-a', localRank: 1 },
  ]);
});

test('without a ready spare a free worker node takes over, in the same super-node when it can', () => {
  const { nodes, placement, allocations } = setUp([
    node({ name: 'a-free', superNode: 'sn1' }),
    node({ name: 'b-free', superNode: 'sn0' }),
    node({ name: 'spare-small', superNode: 'sn0', role: 'spare', unhealthy: [0] }),
  ]);
  const r = replaceNode({ job: spec, placement, failedNodeId: 'id-sn0-n0', nodes, allocations });
  assert.deepEqual(r.kind === 'replaced' && [r.nodeName, r.source], ['b-free', 'free']);
});

test('without any candidate the replacement waits and says why', () => {
  const { nodes, placement, allocations } = setUp([
    node({ name: 'spare-a', superNode: 'sn0', role: 'spare', state: 'down' }),
    node({ name: 'worker-c', superNode: 'sn0', state: 'cordoned' }),
  ]);
  const r = replaceNode({ job: spec, placement, failedNodeId: 'id-sn0-n0', nodes, allocations });
  assert.deepEqual(r, {
    kind: 'waiting',
    waitReason:
      'no node can take ranks 0-1 of sn0-n0, which needs 2 healthy cpu devices: no ready spare ' +
      'has them (spare-a down), and no free ready worker node has them (worker-c cordoned, ' +
      'sn1-n0 and sn1-n1 in use by j-other)',
  });
});

test('replacing a node that runs none of the job’s ranks is an error', () => {
  const { nodes, placement, allocations } = setUp([]);
  assert.throws(
    () => replaceNode({ job: spec, placement, failedNodeId: 'id-sn1-n0', nodes, allocations }),
    /runs none of the ranks of job j-train/,
  );
});
