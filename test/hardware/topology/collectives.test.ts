import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  busBandwidthFactor,
  createTopology,
  defaultCluster,
  estimateCollective,
  meshRings,
} from '../../../src/hardware/index.ts';
import { example, near, range } from './helpers.ts';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

test('a full mesh of 8 gives 6 edge-disjoint directed rings', () => {
  // K8 decomposes into 3 Hamiltonian cycles (Walecki), each usable both ways.
  assert.equal(meshRings(8), 6);
  assert.equal(meshRings(7), 6);
  assert.equal(meshRings(4), 2);
  assert.equal(meshRings(2), 1);
});

test('a ring all-reduce over the 8 full-mesh GPUs of one br166-oam-8 matches the hand computation', () => {
  // S = 256 MiB = 268,435,456 bytes, n = 8, 2(n-1) = 14 steps of S/8 = 33,554,432 bytes.
  // alpha: one BLink hop, 2 us -> 14 x 2 = 28 us.
  // beta: 6 edge-disjoint directed rings, each on its own 32 GB/s lane -> 6 x 32 = 192 GB/s;
  //       14 x 33,554,432 = 469,762,048 bytes / 192e9 B/s = 2,446.677 us.
  // t = 2,474.677 us; algBw = S / t = 108.47 GB/s; busBw = algBw x 14/8 = 189.83 GB/s.
  const sn = example('supernode-1024');
  const ring = estimateCollective(sn, {
    op: 'all-reduce',
    bytes: 256 * MiB,
    devices: range(8),
    algorithm: 'ring',
  });
  assert.equal(ring.breakdown.steps, 14);
  assert.ok(near(ring.breakdown.alphaSeconds, 28e-6));
  assert.equal(ring.breakdown.bytesOnBottleneck, 469_762_048);
  assert.equal(ring.breakdown.betaGbs, 192);
  assert.ok(near(ring.seconds, 28e-6 + 469_762_048 / 192e9));
  assert.ok(near(ring.busBwGbs, ((256 * MiB) / ring.seconds / 1e9) * (14 / 8)));
  assert.equal(Math.round(ring.busBwGbs * 100) / 100, 189.83);

  // Direct (one-shot): every GPU sends the whole buffer to its 7 peers at once, each over its
  // own lane: 1 step of 2 us + 268,435,456 / 32e9 = 8,388.608 us -> 8,390.608 us.
  const direct = estimateCollective(sn, {
    op: 'all-reduce',
    bytes: 256 * MiB,
    devices: range(8),
    algorithm: 'direct',
  });
  assert.ok(near(direct.seconds, 2e-6 + (256 * MiB) / 32e9));
  // The ring wins at 256 MiB...
  assert.equal(
    estimateCollective(sn, { op: 'all-reduce', bytes: 256 * MiB, devices: range(8) }).algorithm,
    'ring',
  );

  // ...and direct wins small messages. 8 KiB: ring 28 + 14 x 1,024 / 192e9 = 28.075 us;
  // direct 2 + 8,192 / 32e9 = 2.256 us. They cross where 26 us = S x (1/32e9 - 14/8/192e9),
  // S = 1.17 MB: direct at 1 MiB (34.8 vs 37.6 us), ring at 2 MiB (47.1 vs 67.5 us).
  const small = estimateCollective(sn, { op: 'all-reduce', bytes: 8192, devices: range(8) });
  assert.equal(small.algorithm, 'direct');
  assert.ok(near(small.seconds, 2e-6 + 8192 / 32e9));
  assert.equal(
    estimateCollective(sn, { op: 'all-reduce', bytes: MiB, devices: range(8) }).algorithm,
    'direct',
  );
  assert.equal(
    estimateCollective(sn, { op: 'all-reduce', bytes: 2 * MiB, devices: range(8) }).algorithm,
    'ring',
  );
});

test('a hierarchical all-reduce across the super-nodes of the 1,024 example matches the hand computation', () => {
  // S = 256 MiB over all 1,024 GPUs: 8 per server, 32 servers per super-node, 4 super-nodes.
  // 1. reduce-scatter in each server (full mesh): direct, each GPU sends S/8 = 33,554,432 B
  //    to each peer on its own 32 GB/s lane: 2 us + 1,048.576 us = 1,050.576 us
  //    (the ring would take 7 x 2 + 7/8 x S / 192e9 = 1,237.3 us).
  // 2. reduce-scatter in each super-node among the 32 same-local-rank GPUs, each holding
  //    S/8: direct over the 128 GB/s super-node port, 31/32 x 33,554,432 = 32,505,856 B:
  //    2.5 + 253.952 = 256.452 us (a ring: 31 x 2.5 us of latency instead of one).
  // 3. all-reduce across the 4 super-nodes among the 256 GPUs at each position, each holding
  //    S/256 = 1,048,576 B. Ring order sn0 > sn1 > sn3 > sn2 > sn0 follows the circuits; the
  //    thinnest legs (sn1-sn3, sn2-sn0) have 32 x 50 = 1,600 GB/s shared by 256 flows =
  //    6.25 GB/s each. 2(4-1) = 6 steps of 1,048,576 / 4 B: 6 x 4 us + 1,572,864 / 6.25e9 =
  //    24 + 251.658 = 275.658 us.
  // 4, 5. all-gathers mirror 2 and 1.
  // t = 2 x 1,050.576 + 2 x 256.452 + 275.658 = 2,889.714 us.
  const sn = example('supernode-1024');
  const estimate = estimateCollective(sn, {
    op: 'all-reduce',
    bytes: 256 * MiB,
    devices: range(1024),
    algorithm: 'hierarchical',
  });
  const phases = estimate.breakdown.phases;
  assert.deepEqual(
    phases.map((p) => [p.name, p.algorithm, p.steps, p.groupSize]),
    [
      ['reduce-scatter in each server', 'direct', 1, 8],
      ['reduce-scatter in each super-node', 'direct', 1, 32],
      ['all-reduce across super-nodes', 'ring', 6, 4],
      ['all-gather in each super-node', 'direct', 1, 32],
      ['all-gather in each server', 'direct', 1, 8],
    ],
  );
  const [server, superNode, across] = phases;
  assert.ok(near(server?.seconds ?? 0, 2e-6 + 33_554_432 / 32e9));
  assert.ok(near(superNode?.seconds ?? 0, 2.5e-6 + 32_505_856 / 128e9));
  assert.ok(near(across?.seconds ?? 0, 24e-6 + 1_572_864 / 6.25e9));
  assert.equal(across?.betaGbs, 6.25);
  assert.match(across?.bottleneck ?? '', /ocs sn1>sn3 \(shared by 256 flows\)/);
  assert.ok(near(estimate.seconds, 2889.714e-6, 1e-6));
  assert.equal(
    estimate.busBwGbs,
    ((256 * MiB) / estimate.seconds / 1e9) * busBandwidthFactor('all-reduce', 1024),
  );
});

test('a ring all-reduce across 2 hgx-h100 servers matches the hand computation', () => {
  // 16 GPUs, S = 1 GiB: 2(16-1) = 30 steps of S/16 = 67,108,864 bytes.
  // Each GPU's share of the NICs: 8 x 400 Gb/s / 8 bits / 8 GPUs = 50 GB/s. NCCL runs one
  // ring per GPU (8 channels); channel c crosses between the servers on GPU c's own NIC, so
  // one channel runs at min(450 / 8 NVSwitch share, 50 NIC) = 50 GB/s and the 8 together at
  // 400 GB/s: a single ring's bus bandwidth is the 50 GB/s per-GPU NIC share, the 8 channels
  // add up to 8 x 50.
  // alpha = max(1.5 NVSwitch, 2 NIC) = 2 us -> 60 us; beta = 30 x 67,108,864 / 400e9 =
  // 5,033.165 us; t = 5,093.165 us. busBw = S / t x 30/16 = 395.29 GB/s: 400 GB/s less the
  // alpha term's 1.2%.
  const topology = createTopology(defaultCluster({ accelerator: 'h100-sxm', gpus: 16 }));
  const ring = estimateCollective(topology, {
    op: 'all-reduce',
    bytes: GiB,
    devices: range(16),
    algorithm: 'ring',
  });
  assert.equal(ring.breakdown.steps, 30);
  assert.ok(near(ring.breakdown.alphaSeconds, 60e-6));
  assert.equal(ring.breakdown.betaGbs, 400);
  assert.match(ring.breakdown.note, /8 concurrent rings x 50 GB\/s/);
  assert.ok(near(ring.seconds, 60e-6 + (30 * 67_108_864) / 400e9));
  assert.equal(Math.round(ring.busBwGbs * 100) / 100, 395.29);
  assert.equal(
    estimateCollective(topology, { op: 'all-reduce', bytes: GiB, devices: range(16) }).algorithm,
    'ring',
  );
});

test('every collective reports its algorithm and a breakdown whose terms add up', () => {
  const lab = example('lab-hetero');
  for (const op of ['all-reduce', 'all-gather', 'reduce-scatter', 'all-to-all'] as const) {
    const e = estimateCollective(lab, { op, bytes: 64 * MiB, devices: range(48) });
    assert.ok(e.seconds > 0, op);
    assert.ok(near(e.seconds, e.breakdown.alphaSeconds + e.breakdown.betaSeconds), op);
    assert.ok(near(e.busBwGbs, e.algBwGbs * busBandwidthFactor(op, 48)), op);
    assert.ok(e.candidates.some((c) => c.algorithm === e.algorithm && c.seconds === e.seconds));
  }
  // One device: nothing to do.
  assert.equal(estimateCollective(lab, { op: 'all-reduce', bytes: 1, devices: [3] }).seconds, 0);
  assert.throws(
    () =>
      estimateCollective(lab, { op: 'all-to-all', bytes: 1, devices: range(8), algorithm: 'ring' }),
    /algorithm ring does not apply/,
  );
});

test('a mixed-accelerator ring runs at the slowest server', () => {
  // A100 servers: 8 x 200 Gb/s / 8 / 8 = 25 GB/s per GPU NIC share; MI300X: 50. The ring
  // through all 48 GPUs runs 6 channels (the MI300X mesh's edge-disjoint rings), each at
  // min(300/6 NVSwitch share, 64 mesh lane, 25 NIC) = 25 GB/s: 150 GB/s.
  const lab = example('lab-hetero');
  const ring = estimateCollective(lab, {
    op: 'all-gather',
    bytes: 64 * MiB,
    devices: range(48),
    algorithm: 'ring',
  });
  assert.equal(ring.breakdown.betaGbs, 150);
});

test('all-to-all across super-nodes is limited by the circuits all flows share', () => {
  // All 1,024 GPUs, S = 256 MiB: each sends S/1,024 = 262,144 B to every other GPU.
  // sn1 -> sn3 carries its own 256 x 256 flows and the relayed sn0 -> sn3 ones
  // (sn0 -> sn1 -> sn3): 2 x 65,536 x 262,144 B over 1,600 GB/s = 21.47 ms.
  const sn = example('supernode-1024');
  const e = estimateCollective(sn, { op: 'all-to-all', bytes: 256 * MiB, devices: range(1024) });
  assert.equal(e.algorithm, 'direct');
  assert.match(e.breakdown.bottleneck, /^ocs sn1>sn3/);
  assert.ok(near(e.breakdown.betaSeconds, (2 * 65536 * 262_144) / 1600e9));
});

test('a collective over 1,024 of 16,384 GPUs is estimated without expanding the cluster per device pair', () => {
  // Speed is a benchmark's business, not a test's; this checks the large case gives sane answers.
  const rail = example('h100-16k-rail');
  const contiguous = range(1024, 3584);
  const spread = range(1024).map((i) => i * 16);
  for (const op of ['all-reduce', 'all-gather', 'reduce-scatter', 'all-to-all'] as const)
    for (const devices of [contiguous, spread]) {
      const e = estimateCollective(rail, { op, bytes: 256 * MiB, devices });
      assert.ok(Number.isFinite(e.seconds) && e.seconds > 0, `${op}: ${e.seconds}`);
      assert.ok(e.busBwGbs > 0 && e.busBwGbs <= 450, `${op}: busBw ${e.busBwGbs}`);
    }
});
