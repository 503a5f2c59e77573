import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  placeJob,
  replicaPeersFor,
  type Placement,
  type RankAssignment,
} from '../../../src/control/scheduler/index.ts';
import { cluster, job, node } from './helpers.ts';

/** A one-rank-per-node placement on the given node ids, in order. */
const onNodes = (ids: readonly string[]): { ranks: RankAssignment[] } => ({
  ranks: ids.map((nodeId, rank) => ({ rank, nodeId, localRank: 0 })),
});

test('every node of a job spanning super-nodes replicates to a node in another one', () => {
  const nodes = cluster({ superNodes: 2, nodesPerSuperNode: 2 });
  const result = placeJob({ job: job({ id: 'j', nodes: 4 }), nodes, allocations: [] });
  const placement = (result as { placement: Placement }).placement;
  assert.equal(placement.superNodesSpanned, 2);
  const peers = replicaPeersFor(placement, nodes);
  assert.deepEqual(
    peers.map((p) => [p.nodeId, p.peerNodeId, p.crossesDomain]),
    [
      ['id-sn0-n0', 'id-sn1-n0', true],
      ['id-sn0-n1', 'id-sn1-n1', true],
      ['id-sn1-n0', 'id-sn0-n1', true],
      ['id-sn1-n1', 'id-sn0-n0', true],
    ],
  );
});

test('each node keeps exactly one other node’s replicas, crossing domains wherever it can', () => {
  const nodes = cluster({ superNodes: 3, nodesPerSuperNode: 3 });
  const ids = ['id-sn0-n0', 'id-sn0-n1', 'id-sn0-n2', 'id-sn1-n0', 'id-sn2-n0'];
  const peers = replicaPeersFor(onNodes(ids), nodes);
  assert.equal(new Set(peers.map((p) => p.peerNodeId)).size, ids.length);
  assert.ok(peers.every((p) => p.peerNodeId !== p.nodeId));
  assert.equal(peers.filter((p) => p.crossesDomain).length, 3);
});

test('nodes inside one super-node replicate to each other in a cycle', () => {
  const nodes = cluster({ superNodes: 1, nodesPerSuperNode: 3 });
  const peers = replicaPeersFor(onNodes(['id-sn0-n0', 'id-sn0-n1', 'id-sn0-n2']), nodes);
  assert.deepEqual(
    peers.map((p) => [p.nodeId, p.peerNodeId, p.crossesDomain]),
    [
      ['id-sn0-n0', 'id-sn0-n1', false],
      ['id-sn0-n1', 'id-sn0-n2', false],
      ['id-sn0-n2', 'id-sn0-n0', false],
    ],
  );
});

test('without super-node labels the pod is the failure domain', () => {
  const nodes = [
    node({ name: 'a', pod: 'p0' }),
    node({ name: 'b', pod: 'p0' }),
    node({ name: 'c', pod: 'p1' }),
    node({ name: 'd', pod: 'p1' }),
  ];
  const peers = replicaPeersFor(onNodes(['id-a', 'id-b', 'id-c', 'id-d']), nodes);
  assert.ok(peers.every((p) => p.crossesDomain));
});

test('a single-node job has no replica peer', () => {
  const nodes = cluster({ superNodes: 1, nodesPerSuperNode: 2 });
  assert.deepEqual(replicaPeersFor(onNodes(['id-sn0-n0']), nodes), [
    { nodeId: 'id-sn0-n0', peerNodeId: null, crossesDomain: false },
  ]);
});
