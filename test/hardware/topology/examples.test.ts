import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ancestorsOf,
  childrenOf,
  createTopology,
  defaultCluster,
  deviceAddress,
  findNode,
  getAccelerator,
  resolveDevice,
  rootNode,
  summarizeCluster,
} from '../../../src/hardware/index.ts';
import { example } from './helpers.ts';

test('the super-node example holds 1,024 BR166 in 4 super-nodes of 32 eight-GPU servers', () => {
  const summary = summarizeCluster(example('supernode-1024'));
  assert.equal(summary.devices, 1024);
  assert.equal(summary.servers, 128);
  assert.deepEqual(
    summary.levels.map((l) => [l.kind, l.count]),
    [
      ['cluster', 1],
      ['super-node', 4],
      ['server', 128],
      ['device', 1024],
    ],
  );
  assert.deepEqual(
    summary.accelerators.map((a) => [a.id, a.devices, a.servers]),
    [['br166', 1024, 128]],
  );
  assert.equal(
    summary.hierarchy.compact,
    '4 × super-node[32 × br166-oam-8 (8 × br166, full mesh)]',
  );
  assert.equal(summary.ocs?.circuits.length, 4);
});

test('the rail-optimized example holds 16,384 H100 in 4 pods of 16 rail groups of 32 servers', () => {
  const summary = summarizeCluster(example('h100-16k-rail'));
  assert.equal(summary.devices, 16384);
  assert.equal(summary.servers, 2048);
  assert.deepEqual(
    summary.levels.map((l) => [l.kind, l.count]),
    [
      ['cluster', 1],
      ['pod', 4],
      ['rail-group', 64],
      ['server', 2048],
      ['device', 16384],
    ],
  );
  assert.equal(
    summary.hierarchy.compact,
    '4 × pod[16 × rail-group[32 × hgx-h100 (8 × h100-sxm, switch)]]',
  );
  assert.equal(summary.fabric?.kind, 'rail-optimized');
});

test('the lab example mixes 32 A100 and 16 MI300X under two leaves of one fabric', () => {
  const summary = summarizeCluster(example('lab-hetero'));
  assert.equal(summary.devices, 48);
  assert.deepEqual(
    summary.accelerators.map((a) => [a.id, a.devices, a.servers]),
    [
      ['a100-80g', 32, 4],
      ['mi300x', 16, 2],
    ],
  );
  assert.deepEqual(
    summary.levels.map((l) => [l.kind, l.count]),
    [
      ['cluster', 1],
      ['leaf-group', 2],
      ['server', 6],
      ['device', 48],
    ],
  );
  // Peak and memory are sums over devices of the catalog's dense bf16 peak and memory.
  const a100 = getAccelerator('a100-80g');
  const mi300x = getAccelerator('mi300x');
  const tflops = 32 * (a100.peakTflops.bf16 ?? 0) + 16 * (mi300x.peakTflops.bf16 ?? 0);
  assert.equal(summary.peakBf16Pflops, Math.round(tflops) / 1000);
  assert.equal(summary.memoryGiB, 32 * a100.memoryGiB + 16 * mi300x.memoryGiB);
  assert.equal(
    summary.hierarchy.compact,
    'leaf-group[4 × hgx-a100-80g (8 × a100-80g, switch)], leaf-group[2 × mi300x-8oam (8 × mi300x, full mesh)]',
  );
});

test('bisection is the narrowest balanced cut of the top-level nodes', () => {
  // Super-nodes: cutting {sn0,sn1} from {sn2,sn3} leaves the sn0-sn2 and sn1-sn3 circuits,
  // 32 + 32 circuits x 50 GB/s = 3,200 GB/s; the other two cuts keep 6,400 and 9,600.
  const sn = summarizeCluster(example('supernode-1024')).bisection;
  assert.equal(sn.gbsPerDirection, 3200);
  assert.equal(sn.cut, 'sn0 sn1 | sn2 sn3');
  assert.equal(sn.cutsConsidered, 3);
  // Pods: 8,192 GPUs a side x 50 GB/s NIC share, halved by the spine's 2:1 uplinks.
  assert.equal(summarizeCluster(example('h100-16k-rail')).bisection.gbsPerDirection, 204800);
  // Leaves: 32 A100 x 25 GB/s = 800 = 16 MI300X x 50 GB/s.
  assert.equal(summarizeCluster(example('lab-hetero')).bisection.gbsPerDirection, 800);
});

test('every device has a stable global index and an address naming its place in the tree', () => {
  const sn = example('supernode-1024');
  // sn1 starts at device 256; server 7 of it at 256 + 7 x 8 = 312; gpu3 is 315.
  assert.equal(deviceAddress(sn, 315), 'sn1/srv07/gpu3');
  assert.equal(resolveDevice(sn, 'sn1/srv07/gpu3'), 315);
  assert.equal(resolveDevice(sn, 'sn1/srv7/gpu3'), 315);
  assert.deepEqual(
    ancestorsOf(sn, 315).map((n) => `${n.kind}:${n.index}:${n.address}`),
    ['cluster:0:', 'super-node:1:sn1', 'server:39:sn1/srv07', 'device:315:sn1/srv07/gpu3'],
  );
  const rail = example('h100-16k-rail');
  // pod1 starts at server 512, rg03 of it at 512 + 3 x 32 = 608, srv12 is 620: 620 x 8 + 3.
  assert.equal(resolveDevice(rail, 'pod1/rg03/srv12/gpu3'), 4963);
  assert.equal(deviceAddress(rail, 4963), 'pod1/rg03/srv12/gpu3');
  assert.throws(() => resolveDevice(rail, 'pod1/rg16/srv00/gpu0'), /pod1 has no rg16/);
});

test('the tree is walked node by node without expanding every device', () => {
  const rail = example('h100-16k-rail');
  const root = rootNode(rail);
  assert.equal(root.deviceCount, 16384);
  const pods = childrenOf(rail, root);
  assert.deepEqual(
    pods.map((p) => [p.address, p.firstServer, p.serverCount, p.deviceCount]),
    [
      ['pod0', 0, 512, 4096],
      ['pod1', 512, 512, 4096],
      ['pod2', 1024, 512, 4096],
      ['pod3', 1536, 512, 4096],
    ],
  );
  const group = findNode(rail, 'pod2/rg15');
  assert.equal(group.kind, 'rail-group');
  assert.equal(group.index, 47);
  assert.equal(childrenOf(rail, group).length, 32);
  assert.equal(childrenOf(rail, findNode(rail, 'pod2/rg15/srv31')).length, 8);
});

test('--accelerator h100-sxm --gpus 64 builds 8 hgx-h100 servers on a one-tier fabric', () => {
  const cluster = defaultCluster({ accelerator: 'h100-sxm', gpus: 64 });
  assert.equal(cluster.serverCount, 8);
  assert.equal(cluster.deviceCount, 64);
  assert.deepEqual(
    cluster.runs.map((r) => [r.model.id, r.count, r.devicesPerServer]),
    [['hgx-h100', 8, 8]],
  );
  assert.deepEqual(
    cluster.fabric?.tiers.map((t) => [t.serversPerGroup, t.oversubscription]),
    [[null, 1]],
  );
});

test('a GPU count that is not a multiple of the server leaves the last server partly used', () => {
  const cluster = defaultCluster({ accelerator: 'h100-sxm', gpus: 12 });
  assert.deepEqual(
    cluster.runs.map((r) => [r.count, r.devicesPerServer]),
    [
      [1, 8],
      [1, 4],
    ],
  );
  const summary = summarizeCluster(createTopology(cluster));
  assert.equal(
    summary.hierarchy.compact,
    'hgx-h100 (8 × h100-sxm, switch), hgx-h100 (4 of 8 × h100-sxm, switch)',
  );
});

test('more than 32 servers get a non-blocking two-tier fabric of 32-server groups', () => {
  const cluster = defaultCluster({ accelerator: 'h100-sxm', gpus: 1024 });
  assert.equal(cluster.fabric?.kind, 'rail-optimized');
  assert.deepEqual(
    cluster.fabric?.tiers.map((t) => [t.name, t.serversPerGroup, t.oversubscription]),
    [
      ['rail', 32, 1],
      ['spine', null, 1],
    ],
  );
  assert.throws(() => defaultCluster({ accelerator: 'h100', gpus: 8 }), /unknown accelerator/);
  assert.throws(() => defaultCluster({ accelerator: 'h100-sxm', gpus: 0 }), /positive integer/);
});
