import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CubeError } from '../../../src/core/index.ts';
import {
  clusterFromDescription,
  createTopology,
  getServer,
  pathBetween,
} from '../../../src/hardware/index.ts';
import { example } from './helpers.ts';

// The numbers these hand computations rely on, from the catalog and the example files.
test('the catalog numbers the path tests rely on are what the comments assume', () => {
  const br166 = getServer('br166-oam-8');
  assert.deepEqual(br166.intraServer, {
    kind: 'full-mesh',
    laneGbsPerDirection: 32,
    lanesPerPeer: 1,
    latencyUs: 2,
  });
  assert.deepEqual(br166.nics, { count: 8, gbps: 200, railOptimized: true, latencyUs: 2 });
  const h100 = getServer('hgx-h100');
  assert.deepEqual(h100.intraServer, { kind: 'switch', gbsPerDirection: 450, latencyUs: 1.5 });
  assert.deepEqual(h100.nics, { count: 8, gbps: 400, railOptimized: true, latencyUs: 2 });
});

test('two GPUs in one full-mesh server talk over their own lane', () => {
  // One lane per peer at 32 GB/s per direction; the BLink hop is 2 us.
  const path = pathBetween(example('supernode-1024'), 'sn1/srv07/gpu3', 'sn1/srv07/gpu5');
  assert.equal(path.kind, 'intra-server');
  assert.equal(path.commonLevel, 'server');
  assert.equal(path.gbsPerDirection, 32);
  assert.equal(path.latencyUs, 2);
  assert.deepEqual(
    path.hops.map((h) => h.level),
    ['server (full mesh)'],
  );
});

test('two servers in one super-node talk over the super-node fabric', () => {
  // The super-node gives every GPU 128 GB/s per direction to any other GPU in it, 2.5 us.
  const path = pathBetween(example('supernode-1024'), 'sn1/srv07/gpu3', 'sn1/srv08/gpu3');
  assert.equal(path.kind, 'super-node');
  assert.equal(path.commonLevel, 'super-node');
  assert.equal(path.gbsPerDirection, 128);
  assert.equal(path.latencyUs, 2.5);
});

test('two super-nodes with a circuit talk over it, limited by the GPU port', () => {
  // sn0-sn1 has 64 circuits x 50 GB/s = 3,200 GB/s shared; one flow gets its GPU's 128 GB/s.
  const path = pathBetween(example('supernode-1024'), 'sn0/srv00/gpu0', 'sn1/srv00/gpu0');
  assert.equal(path.kind, 'ocs');
  assert.equal(path.commonLevel, 'cluster');
  assert.equal(path.gbsPerDirection, 128);
  assert.equal(path.latencyUs, 4);
  const circuit = path.hops.find((h) => h.kind === 'ocs-circuit');
  assert.equal(circuit?.gbsPerDirection, 3200);
  assert.equal(circuit?.sharedBy, 'sn0>sn1');
});

test('two super-nodes without a circuit relay through a third when there is no packet fabric', () => {
  // sn0-sn3 has no circuit. Via sn1: min(3,200, 1,600) = 1,600 GB/s; via sn2: min(1,600,
  // 3,200) = 1,600: a tie, so the lower index, sn1. Latency: 4 (circuit) + 2.5 (crossing
  // sn1's fabric) + 4 (circuit) = 10.5 us.
  const path = pathBetween(example('supernode-1024'), 'sn0/srv00/gpu0', 'sn3/srv00/gpu0');
  assert.equal(path.kind, 'ocs-relay');
  assert.equal(path.latencyUs, 10.5);
  assert.equal(path.gbsPerDirection, 128);
  assert.deepEqual(
    path.hops.map((h) => [h.level, h.gbsPerDirection]),
    [
      ['sn0 fabric', 128],
      ['ocs sn0>sn1', 3200],
      ['sn1 fabric (relay)', 128],
      ['ocs sn1>sn3', 1600],
      ['sn3 fabric', 128],
    ],
  );
});

/** The super-node example with another OCS matching and, optionally, a packet fabric. */
function superNodeVariant(options: { circuits: [string, string][]; fabric?: boolean }) {
  return createTopology(
    clusterFromDescription({
      name: 'variant',
      superNodes: [
        {
          count: 4,
          servers: [{ server: 'br166-oam-8', count: 32 }],
          gbsPerDirection: 128,
          latencyUs: 2.5,
        },
      ],
      ...(options.fabric === true ? { fabric: { kind: 'clos', tiers: [{ name: 'leaf' }] } } : {}),
      ocs: {
        latencyUs: 4,
        gbsPerCircuit: 50,
        circuits: options.circuits.map((between) => ({ between, count: 16 })),
      },
    }),
  );
}

test('two super-nodes without a circuit use the packet fabric when there is one', () => {
  // br166-oam-8: 8 NICs x 200 Gb/s / 8 bits / 8 GPUs = 25 GB/s per GPU; one switch tier,
  // so the NIC's own 2 us latency.
  const topology = superNodeVariant({ circuits: [['sn0', 'sn1']], fabric: true });
  const path = pathBetween(topology, 'sn0/srv00/gpu0', 'sn3/srv00/gpu0');
  assert.equal(path.kind, 'packet');
  assert.equal(path.gbsPerDirection, 25);
  assert.equal(path.latencyUs, 2);
  assert.equal(pathBetween(topology, 'sn0/srv00/gpu0', 'sn1/srv00/gpu0').kind, 'ocs');
});

test('two super-nodes with no chain of circuits and no packet fabric are unreachable', () => {
  const topology = superNodeVariant({
    circuits: [
      ['sn0', 'sn1'],
      ['sn2', 'sn3'],
    ],
  });
  assert.throws(
    () => pathBetween(topology, 'sn0/srv00/gpu0', 'sn2/srv00/gpu0'),
    (error: unknown) =>
      error instanceof CubeError &&
      error.code === 'INFEASIBLE' &&
      /sn0 and sn2 are not connected/.test(error.message),
  );
});

test('the same rail in one rail group is one switch hop', () => {
  // NIC share 8 x 400 Gb/s / 8 / 8 = 50 GB/s; NIC plus rail switch 2 us.
  const path = pathBetween(
    example('h100-16k-rail'),
    'pod0/rg00/srv00/gpu3',
    'pod0/rg00/srv01/gpu3',
  );
  assert.equal(path.kind, 'packet');
  assert.equal(path.commonLevel, 'rail-group');
  assert.equal(path.gbsPerDirection, 50);
  assert.equal(path.latencyUs, 2);
});

test('two GPUs on different rails take the cheaper of the spine and an NVLink hop (PXN)', () => {
  // Up to the spine: 50 GB/s (rail tier 1:1), 2 + 2 x 0.5 = 3 us. PXN: min(450, 50) =
  // 50 GB/s, 1.5 + 2 = 3.5 us. Same bandwidth, the spine is quicker.
  const rail = example('h100-16k-rail');
  const path = pathBetween(rail, 'pod0/rg00/srv00/gpu0', 'pod0/rg00/srv01/gpu3');
  assert.equal(path.kind, 'packet');
  assert.deepEqual(
    path.hops.map((h) => h.level),
    ['nic + rail', 'spine', 'nic'],
  );
  assert.equal(path.gbsPerDirection, 50);
  assert.equal(path.latencyUs, 3);
  // With the rail tier 2:1 oversubscribed, the spine gives 25 GB/s and PXN's 50 wins.
  const oversubscribed = createTopology(
    clusterFromDescription({
      name: 'rails-2to1',
      servers: [{ server: 'hgx-h100', count: 64 }],
      fabric: {
        kind: 'rail-optimized',
        tiers: [{ name: 'rail', serversPerGroup: 32, oversubscription: 2 }, { name: 'spine' }],
      },
    }),
  );
  const pxn = pathBetween(oversubscribed, 'rg0/srv00/gpu0', 'rg0/srv01/gpu3');
  assert.equal(pxn.kind, 'packet-pxn');
  assert.deepEqual(
    pxn.hops.map((h) => [h.level, h.gbsPerDirection]),
    [
      ['pxn (switch)', 450],
      ['nic + rail', 50],
      ['nic', 50],
    ],
  );
  assert.equal(pxn.latencyUs, 3.5);
});

test('oversubscription halves cross-tier bandwidth when 2:1', () => {
  // Inside a pod the spine is non-blocking: 50 GB/s. Between pods the traffic leaves the
  // pod through the spine's 2:1 uplinks: 50 / 2 = 25 GB/s, and climbs to the core:
  // 2 + 2 x 0.5 (spine) + 2 x 0.5 (core) = 4 us.
  const rail = example('h100-16k-rail');
  const inPod = pathBetween(rail, 'pod0/rg00/srv00/gpu0', 'pod0/rg05/srv00/gpu0');
  const acrossPods = pathBetween(rail, 'pod0/rg00/srv00/gpu0', 'pod2/rg05/srv00/gpu0');
  assert.equal(inPod.commonLevel, 'pod');
  assert.equal(inPod.gbsPerDirection, 50);
  assert.equal(acrossPods.commonLevel, 'cluster');
  assert.equal(acrossPods.gbsPerDirection, 25);
  assert.equal(acrossPods.bottleneck, 'core');
  assert.equal(acrossPods.latencyUs, 4);
});
