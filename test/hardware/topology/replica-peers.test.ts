import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import {
  createTopology,
  defaultCluster,
  loadClusterFile,
  replicaPeers,
} from '../../../src/hardware/index.ts';

const example = (name: string): string =>
  fileURLToPath(new URL(`../../../examples/clusters/${name}`, import.meta.url));

test('every server of the super-node cluster replicates to a server in another super-node', () => {
  const topology = createTopology(loadClusterFile(example('supernode-1024.yaml')));
  const pairs = replicaPeers(topology);
  assert.equal(pairs.length, 128);
  assert.ok(pairs.every((p) => p.crossesDomain && p.peer !== p.server));
  assert.match(pairs[0]?.serverAddress ?? '', /^sn0\//);
  assert.match(pairs[0]?.peerAddress ?? '', /^sn1\//);
  const receivers = new Set(pairs.map((p) => p.peer));
  assert.equal(receivers.size, 128, "each server keeps exactly one other server's replicas");
});

test("a job's servers inside one super-node replicate to each other when no other domain is used", () => {
  const topology = createTopology(loadClusterFile(example('supernode-1024.yaml')));
  const pairs = replicaPeers(topology, [0, 1, 2]);
  assert.deepEqual(
    pairs.map((p) => [p.server, p.peer, p.crossesDomain]),
    [
      [0, 1, false],
      [1, 2, false],
      [2, 0, false],
    ],
  );
});

test('a lopsided set crosses domains wherever it can', () => {
  const topology = createTopology(loadClusterFile(example('supernode-1024.yaml')));
  // Three servers in sn0, one in sn1 (servers 32..63), one in sn2.
  const pairs = replicaPeers(topology, [0, 1, 2, 32, 64]);
  assert.deepEqual(
    pairs.map((p) => [p.server, p.peer]),
    [
      [0, 32],
      [1, 2],
      [2, 0],
      [32, 64],
      [64, 1],
    ],
  );
  assert.equal(pairs.filter((p) => p.crossesDomain).length, 3);
});

test('one server has no replica peer', () => {
  const topology = createTopology(defaultCluster({ accelerator: 'h100-sxm', gpus: 8 }));
  assert.throws(() => replicaPeers(topology), /at least two servers/);
});
