import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  placeJob,
  rankCoordinates,
  type Allocation,
  type Placement,
  type PlaceResult,
  type SchedulerNode,
} from '../../../src/control/scheduler/index.ts';
import { cluster, job, names, node, superNodeOfRank } from './helpers.ts';

function placed(result: PlaceResult): Placement {
  assert.equal(result.kind, 'placed', result.kind === 'waiting' ? result.reason : '');
  return (result as { placement: Placement }).placement;
}

/** Holds the first `busy[s]` nodes of super-node `sn{s}` for another job. */
function busyFirst(busy: readonly number[]): Allocation[] {
  return [
    {
      jobId: 'j-other',
      nodeIds: busy.flatMap((n, s) => Array.from({ length: n }, (_, i) => `id-sn${s}-n${i}`)),
    },
  ];
}

const superNodesOf = (p: Placement, nodes: readonly SchedulerNode[]): string[] =>
  p.nodes.map((a) => nodes.find((n) => n.id === a.nodeId)?.labels.superNode ?? '');

test('a job that fits in one super-node is packed into the smallest one with room', () => {
  const nodes = cluster({ superNodes: 3, nodesPerSuperNode: 4 });
  // Free: sn0 2, sn1 4, sn2 3.
  const p = placed(
    placeJob({ job: job({ id: 'j', nodes: 3 }), nodes, allocations: busyFirst([2, 0, 1]) }),
  );
  assert.equal(p.superNodesSpanned, 1);
  assert.deepEqual(names(p), ['sn2-n1', 'sn2-n2', 'sn2-n3']);
  assert.ok(p.explanation.includes('3 nodes in 1 super-node (sn2, pod0); 2 super-nodes had room'));
});

test('a job too big for any super-node spans the fewest super-nodes', () => {
  const nodes = cluster({ superNodes: 4, nodesPerSuperNode: 4 });
  // Free: sn0 3, sn1 2, sn2 2, sn3 1.
  const p = placed(
    placeJob({ job: job({ id: 'j', nodes: 5 }), nodes, allocations: busyFirst([1, 2, 2, 3]) }),
  );
  assert.equal(p.superNodesSpanned, 2);
  assert.deepEqual(new Set(superNodesOf(p, nodes)), new Set(['sn0', 'sn1']));
  assert.match(p.explanation.join('\n'), /5 nodes across 2 super-nodes \(sn0: 3, sn1: 2\)/);
});

test('among spans of the same size, super-nodes of one pod are preferred', () => {
  const nodes = cluster({ superNodes: 4, nodesPerSuperNode: 3, superNodesPerPod: 2 });
  // Free: pod0 has sn0 3 and sn1 2; pod1 has sn2 3 and sn3 3.
  const p = placed(
    placeJob({ job: job({ id: 'j', nodes: 6 }), nodes, allocations: busyFirst([0, 1, 0, 0]) }),
  );
  assert.equal(p.superNodesSpanned, 2);
  assert.equal(p.podsSpanned, 1);
  assert.deepEqual(new Set(superNodesOf(p, nodes)), new Set(['sn2', 'sn3']));
});

test('tensor-parallel groups never straddle two nodes', () => {
  const nodes = cluster({ superNodes: 2, nodesPerSuperNode: 4, devicesPerNode: 4 });
  const layout = { tp: 2, pp: 2, dp: 4 };
  const p = placed(
    placeJob({
      job: job({ id: 'j', nodes: 4, devicesPerNode: 4, layout }),
      nodes,
      allocations: [],
    }),
  );
  const nodeOfGroup = new Map<string, string>();
  for (const r of p.ranks) {
    const c = rankCoordinates(r.rank, layout);
    const key = `${c.dp}/${c.pp}`;
    assert.equal(nodeOfGroup.get(key) ?? r.nodeId, r.nodeId, `tp group ${key} is split`);
    nodeOfGroup.set(key, r.nodeId);
  }
  assert.equal(p.explanation[0], 'tp=2 groups fit inside one node (4 devices per node)');
});

test('a tensor-parallel group larger than a node is refused with a clear reason', () => {
  const nodes = cluster({ superNodes: 1, nodesPerSuperNode: 4 });
  const result = placeJob({
    job: job({ id: 'j', nodes: 2, layout: { tp: 4, pp: 1, dp: 1 } }),
    nodes,
    allocations: [],
  });
  assert.deepEqual(result, {
    kind: 'waiting',
    reason:
      'tp=4 cannot fit inside one node: a tensor-parallel group needs 4 devices on one node ' +
      'and the job asks for 2 per node; lower layout.tp or raise ranks.devicesPerNode',
  });
});

test('a tp that does not divide the devices per node is refused', () => {
  const nodes = cluster({ superNodes: 1, nodesPerSuperNode: 4, devicesPerNode: 4 });
  const result = placeJob({
    job: job({ id: 'j', nodes: 3, devicesPerNode: 4, layout: { tp: 3, pp: 1, dp: 4 } }),
    nodes,
    allocations: [],
  });
  assert.equal(result.kind, 'waiting');
  assert.match(result.kind === 'waiting' ? result.reason : '', /would straddle two nodes/);
});

test('pipeline neighbours stay inside one super-node, even over a tighter packing', () => {
  const nodes = cluster({ superNodes: 3, nodesPerSuperNode: 6 });
  // Free: sn0 6, sn1 2, sn2 4. Two pipelines of 4 nodes: sn0 + sn1 would hold 8 nodes but
  // cut one pipeline; sn0 + sn2 keeps both whole.
  const layout = { tp: 2, pp: 4, dp: 2 };
  const p = placed(
    placeJob({ job: job({ id: 'j', nodes: 8, layout }), nodes, allocations: busyFirst([0, 4, 2]) }),
  );
  const stage = layout.tp * layout.dp;
  for (let rank = 0; rank + stage < p.worldSize; rank += 1)
    assert.equal(
      superNodeOfRank(p, nodes, rank),
      superNodeOfRank(p, nodes, rank + stage),
      `rank ${rank} and its next stage ${rank + stage} sit in different super-nodes`,
    );
  assert.equal(p.superNodesSpanned, 2);
  assert.ok(
    p.explanation.includes('pp=4: all 12 pipeline neighbour pairs stay inside one super-node'),
  );
});

test('a pipeline longer than any super-node is cut only once', () => {
  const nodes = cluster({ superNodes: 2, nodesPerSuperNode: 3 });
  const layout = { tp: 1, pp: 8, dp: 1 };
  const p = placed(placeJob({ job: job({ id: 'j', nodes: 4, layout }), nodes, allocations: [] }));
  let cuts = 0;
  for (let rank = 0; rank + 1 < p.worldSize; rank += 1)
    if (superNodeOfRank(p, nodes, rank) !== superNodeOfRank(p, nodes, rank + 1)) cuts += 1;
  assert.equal(cuts, 1);
  assert.ok(
    p.explanation.includes(
      'pp=8: 1 of 7 pipeline neighbour pairs cross super-nodes (too little room to keep every pipeline inside one)',
    ),
  );
});

test('unhealthy devices, cordoned and down nodes are never used', () => {
  const nodes = [
    node({ name: 'n1', unhealthy: [0] }),
    node({ name: 'n2', state: 'cordoned' }),
    node({ name: 'n3', state: 'down' }),
    node({ name: 'n4', state: 'left' }),
    node({ name: 'n5' }),
    node({ name: 'n6', devices: 3, unhealthy: [1] }),
  ];
  const p = placed(placeJob({ job: job({ id: 'j', nodes: 2 }), nodes, allocations: [] }));
  assert.deepEqual(names(p), ['n5', 'n6']);
  assert.deepEqual(p.nodes[1]?.deviceIndices, [0, 2], 'the healthy devices of n6');
  const more = placeJob({ job: job({ id: 'j', nodes: 3 }), nodes, allocations: [] });
  assert.equal(more.kind, 'waiting');
});

test('a job only lands on nodes of its device type', () => {
  const nodes = [
    node({ name: 'a-cpu', devices: 8 }),
    node({ name: 'b-amd', kind: 'amd', devices: 8 }),
    node({ name: 'c-nvidia', kind: 'nvidia', devices: 8 }),
    node({ name: 'd-nvidia', kind: 'nvidia', devices: 8 }),
  ];
  const p = placed(
    placeJob({
      job: job({ id: 'j', nodes: 2, devicesPerNode: 8, deviceType: 'nvidia' }),
      nodes,
      allocations: [],
    }),
  );
  assert.deepEqual(names(p), ['c-nvidia', 'd-nvidia']);
  assert.equal(p.deviceType, 'nvidia');
});

test('spares are kept out of first placement unless reserveSpares is false', () => {
  const nodes = [
    node({ name: 'w1' }),
    node({ name: 'w2' }),
    node({ name: 's1', role: 'spare' }),
    node({ name: 's2', role: 'spare' }),
  ];
  const spec = job({ id: 'j', nodes: 3 });
  assert.deepEqual(placeJob({ job: spec, nodes, allocations: [] }), {
    kind: 'waiting',
    reason:
      'needs 3 nodes with 2 healthy cpu devices; 2 ready worker nodes have them ' +
      '(2 spares kept in reserve); the cluster has only 2 worker nodes with 2 cpu devices, ' +
      'so the job waits for more nodes to join and does not hold back other jobs',
  });
  const p = placed(
    placeJob({ job: spec, nodes, allocations: [], options: { reserveSpares: false } }),
  );
  assert.deepEqual(names(p), ['s1', 's2', 'w1']);
});

test('ranks fill each node in order: rank = node index × devices per node + local rank', () => {
  const nodes = cluster({ superNodes: 1, nodesPerSuperNode: 3, devicesPerNode: 4 });
  const p = placed(
    placeJob({ job: job({ id: 'j', nodes: 3, devicesPerNode: 4 }), nodes, allocations: [] }),
  );
  assert.equal(p.worldSize, 12);
  assert.deepEqual(
    p.ranks.map((r) => r.rank),
    Array.from({ length: 12 }, (_, i) => i),
  );
  p.nodes.forEach((n, i) => {
    assert.deepEqual(n.localRanks, [0, 1, 2, 3]);
    assert.deepEqual(
      n.ranks,
      [0, 1, 2, 3].map((l) => i * 4 + l),
    );
    for (const l of n.localRanks)
      assert.deepEqual(p.ranks[i * 4 + l], { rank: i * 4 + l, nodeId: n.nodeId, localRank: l });
  });
});

test('the explanation says how the layout was kept and where the job went', () => {
  const nodes = cluster({ superNodes: 2, nodesPerSuperNode: 4, superNodesPerPod: 2 });
  const p = placed(
    placeJob({
      job: job({ id: 'j', nodes: 4, layout: { tp: 2, pp: 2, dp: 2 } }),
      nodes,
      allocations: [],
    }),
  );
  assert.deepEqual(p.explanation, [
    'tp=2 groups fit inside one node (2 devices per node)',
    'pp=2: all 4 pipeline neighbour pairs stay inside one super-node',
    'dp=2: a data-parallel group spans at most 2 nodes in 1 super-node',
    '4 nodes in 1 super-node (sn0, pod0); 2 super-nodes had room',
    'ranks 0-7: rank = node index × 2 + local rank (rank 0 on sn0-n0)',
    'chosen from 8 free ready worker nodes with 2 healthy cpu devices',
  ]);
});

test('nodes without topology labels are placed by name', () => {
  const nodes = [node({ name: 'node-10' }), node({ name: 'node-2' }), node({ name: 'node-1' })];
  const p = placed(placeJob({ job: job({ id: 'j', nodes: 2 }), nodes, allocations: [] }));
  assert.deepEqual(names(p), ['node-1', 'node-2']);
  assert.ok(p.explanation.includes('2 nodes (no super-node labels: chosen by name)'));
});

test('a 1,024-device job is placed on a 4,096-device cluster in the fewest super-nodes of one pod', () => {
  const nodes = cluster({
    superNodes: 16,
    nodesPerSuperNode: 32,
    devicesPerNode: 8,
    superNodesPerPod: 4,
    kind: 'nvidia',
  });
  const p = placed(
    placeJob({
      job: job({
        id: 'j-1024',
        nodes: 128,
        devicesPerNode: 8,
        deviceType: 'nvidia',
        layout: { tp: 8, pp: 4, dp: 32 },
      }),
      nodes,
      allocations: [],
    }),
  );
  assert.equal(p.worldSize, 1024);
  assert.equal(p.superNodesSpanned, 4);
  assert.equal(p.podsSpanned, 1);
});
