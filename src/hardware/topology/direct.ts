import type { CollectiveOp, CostBreakdown } from './collective-cost.ts';
import { term } from './collective-cost.ts';
import { countInServerRange, type Participants } from './participants.ts';
import {
  fabricWord,
  intraPairGbs,
  nicIndex,
  meetingTier,
  nicShareGbs,
  oversubscriptionBelow,
  routeBetween,
} from './paths.ts';
import { superNodeRoute } from './ocs-routes.ts';
import { round } from './ring.ts';
import type { Topology } from './topology.ts';

/**
 * Direct exchange: every device sends `x` bytes to every other device at once (one-shot
 * all-reduce sends the whole buffer, x = bytes; all-gather, reduce-scatter and all-to-all send
 * one slice, x = bytes/n). The time is the busiest resource: a device's intra-server links
 * (one dedicated lane per peer on a full mesh), its super-node port, its NIC share, the
 * uplinks of each fabric group it leaves (NIC share / oversubscription below), and each OCS
 * circuit pool (all flows between the two super-nodes). On a rail-optimized fabric, traffic to
 * another rail of the same rail group hops over the server's links first (PXN) when that beats
 * going up a tier. All-reduce, all-gather and reduce-scatter are modeled direct only inside
 * one server or one super-node (one latency step); all-to-all anywhere (n-1 rounds when it
 * leaves such a domain).
 */
export function directCost(
  topology: Topology,
  p: Participants,
  op: CollectiveOp,
  bytes: number,
): CostBreakdown | string {
  const n = p.count;
  const m = p.byIndex.length;
  const oneHop = m === 1 || p.superNodes.length === 1;
  if (op !== 'all-to-all' && !oneHop)
    return 'direct (one-shot) is modeled inside one server or one super-node only';
  const x = op === 'all-reduce' ? bytes : bytes / n;
  const { cluster } = topology;
  const fabric = cluster.fabric;
  const tiers = fabric?.tiers ?? [];

  let worst = { seconds: -1, bytes: 0, gbs: 1, label: 'none' };
  const consider = (load: number, gbs: number, label: string): void => {
    const seconds = load / (gbs * 1e9);
    if (seconds > worst.seconds) worst = { seconds, bytes: load, gbs, label };
  };

  // Rail-optimized: per rail group (tier-1 group), participants on each rail.
  const railGroupSize = tiers.length > 1 ? (tiers[0]?.serversPerGroup ?? null) : null;
  const rails = fabric?.kind === 'rail-optimized' && cluster.superNodes.length === 0;
  let maxNics = 1;
  for (const run of cluster.runs) maxNics = Math.max(maxNics, run.model.nics.count);
  const groupRails = new Map<number, Int32Array>();
  const groupTotals = new Map<number, number>();
  if (rails)
    for (const s of p.byIndex) {
      const group = railGroupSize === null ? 0 : Math.floor(s.server / railGroupSize);
      let counts = groupRails.get(group);
      if (counts === undefined) {
        counts = new Int32Array(maxNics);
        groupRails.set(group, counts);
      }
      for (const local of s.locals) {
        const rail = nicIndex(s.run.model, local);
        counts[rail] = (counts[rail] ?? 0) + 1;
      }
      groupTotals.set(group, (groupTotals.get(group) ?? 0) + s.devices.length);
    }

  // Per tier group: its size, what leaving it divides a NIC share by, and its label.
  const groupTiers = tiers.slice(0, -1);
  const groupSizes = groupTiers.map((t) => t.serversPerGroup ?? 1);
  const tierLabels = groupTiers.map((t) => `uplinks of a ${t.name} group`);
  const tierDivisors = groupTiers.map((_, i) => oversubscriptionBelow(topology, i + 1));
  const outside = new Float64Array(groupTiers.length);
  const ownRails = new Int32Array(maxNics);
  const intraLabels = new Map<string, string>();
  // Latency grows with the tier two servers meet at: one route per (run, tier) is enough.
  const latencySeen = new Set<number>();
  const runIndex = new Map(cluster.runs.map((run, i) => [run, i]));

  let alphaUs = 0;
  const first = p.byIndex[0]?.devices[0] ?? 0;
  const firstServer = p.byIndex[0]?.server ?? 0;
  for (const s of p.byIndex) {
    const k = s.devices.length;
    const model = s.run.model;
    if (k >= 2) alphaUs = Math.max(alphaUs, model.intraServer.latencyUs);
    const head = s.devices[0] ?? first;
    if (head !== first) {
      const seen =
        (runIndex.get(s.run) ?? 0) * 8 +
        (s.superNode === null ? meetingTier(topology, firstServer, s.server) : 7);
      if (!latencySeen.has(seen)) {
        latencySeen.add(seen);
        alphaUs = Math.max(alphaUs, routeBetween(topology, first, head).latencyUs);
      }
    }

    // Peers reached over the packet fabric, and how many of them lie outside each tier group.
    const share = nicShareGbs(model);
    let packetPeers = 0;
    outside.fill(0);
    if (s.superNode === null) {
      packetPeers = n - k;
      for (let i = 0; i < groupSizes.length; i += 1) {
        const g = groupSizes[i] ?? 1;
        const lo = Math.floor(s.server / g) * g;
        outside[i] = n - countInServerRange(p, lo, lo + g);
      }
    } else {
      const sn = cluster.superNodes[s.superNode];
      for (const other of p.superNodes) {
        if (other.superNode === s.superNode) {
          if (sn !== undefined && other.deviceCount > k)
            consider((other.deviceCount - k) * x, sn.gbsPerDirection, 'super-node port');
          continue;
        }
        if (superNodeRoute(topology, s.superNode, other.superNode).kind !== 'packet') continue;
        const range = cluster.superNodes[other.superNode];
        if (range === undefined) continue;
        packetPeers += other.deviceCount;
        const end = range.firstServer + range.serverCount;
        for (let i = 0; i < groupSizes.length; i += 1) {
          const g = groupSizes[i] ?? 1;
          const lo = Math.floor(s.server / g) * g;
          const inGroup = countInServerRange(
            p,
            Math.max(range.firstServer, lo),
            Math.min(end, lo + g),
          );
          outside[i] = (outside[i] ?? 0) + other.deviceCount - Math.max(0, inGroup);
        }
      }
    }

    let relay = 0;
    if (rails && packetPeers > 0) {
      const group = railGroupSize === null ? 0 : Math.floor(s.server / railGroupSize);
      const counts = groupRails.get(group);
      const inGroup = groupTotals.get(group) ?? 0;
      ownRails.fill(0);
      for (const local of s.locals) {
        const rail = nicIndex(model, local);
        ownRails[rail] = (ownRails[rail] ?? 0) + 1;
      }
      // Peers in the rail group, on other servers, on another rail than the sender's.
      let cross = 0;
      for (const local of s.locals) {
        const rail = nicIndex(model, local);
        cross += inGroup - k - ((counts?.[rail] ?? 0) - (ownRails[rail] ?? 0));
      }
      cross /= k;
      const pxnGbs = Math.min(intraPairGbs(model), share);
      const upGbs = tiers.length > 1 ? share / (tiers[0]?.oversubscription ?? 1) : 0;
      if (pxnGbs >= upGbs) relay = cross * x;
      else outside[0] = (outside[0] ?? 0) + cross;
    }

    if (k >= 2 || relay > 0) {
      let label = intraLabels.get(model.id);
      if (label === undefined) {
        label = `server (${fabricWord(model)})`;
        intraLabels.set(model.id, label);
      }
      if (model.intraServer.kind === 'full-mesh')
        consider(
          (k >= 2 ? x : 0) + relay / Math.max(1, model.acceleratorsPerServer - 1),
          intraPairGbs(model),
          label,
        );
      else consider((k - 1) * x + relay, model.intraServer.gbsPerDirection, label);
    }
    if (packetPeers > 0) {
      consider(packetPeers * x, share, 'nic');
      for (let i = 0; i < outside.length; i += 1) {
        const count = outside[i] ?? 0;
        if (count > 0)
          consider(count * x, share / (tierDivisors[i] ?? 1), tierLabels[i] ?? 'uplinks');
      }
    }
  }

  // OCS circuits: every flow between two super-nodes shares their circuits (or relay legs).
  const loads = new Map<string, { bytes: number; gbs: number }>();
  for (const a of p.superNodes)
    for (const b of p.superNodes) {
      if (a.superNode === b.superNode) continue;
      const route = superNodeRoute(topology, a.superNode, b.superNode);
      if (route.kind !== 'circuits') continue;
      const fromA = a.servers[0]?.devices[0] ?? 0;
      const toB = b.servers[0]?.devices[0] ?? 0;
      alphaUs = Math.max(alphaUs, routeBetween(topology, fromA, toB).latencyUs);
      for (const leg of route.legs) {
        const load = loads.get(leg.key) ?? { bytes: 0, gbs: leg.gbs };
        load.bytes += a.deviceCount * b.deviceCount * x;
        loads.set(leg.key, load);
      }
    }
  for (const [key, load] of loads) consider(load.bytes, load.gbs, `ocs ${key} (all flows)`);

  const steps = oneHop ? 1 : n - 1;
  return {
    ...term({
      algorithm: 'direct',
      steps,
      alphaUs,
      bytesOnBottleneck: worst.bytes,
      betaGbs: worst.gbs,
      bottleneck: worst.label,
      note: `every device sends ${op === 'all-reduce' ? 'the whole buffer' : 'bytes/n'} to each of ${n - 1} peers at once${oneHop ? '' : ` (${steps} rounds)`}; busiest: ${worst.label} at ${round(worst.gbs)} GB/s`,
    }),
    phases: [],
  };
}
