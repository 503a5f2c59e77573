import type { ServerSpec } from '../server.ts';
import type { CollectiveOp, CostBreakdown } from './collective-cost.ts';
import { term } from './collective-cost.ts';
import type { Participants, ServerShare } from './participants.ts';
import { fabricWord, intraPairGbs, routeBetween } from './paths.ts';
import type { Topology } from './topology.ts';

/**
 * Directed rings that share no link on a full mesh of `k` devices: K_k has floor((k-1)/2)
 * edge-disjoint Hamiltonian cycles (Walecki), each usable in both directions; K_8 gives 3
 * cycles, 6 directed rings, using 6 of each device's 7 links. Two devices make one ring.
 */
export function meshRings(k: number): number {
  if (k < 2) return 0;
  if (k === 2) return 1;
  return 2 * Math.floor((k - 1) / 2);
}

/** Concurrent ring channels `k` devices of a server support: one per device on a switch. */
export function ringChannels(model: ServerSpec, k: number): number {
  if (k < 2) return 1;
  return model.intraServer.kind === 'full-mesh' ? meshRings(k) : k;
}

/** Aggregate bandwidth of concurrent rings through `k` devices of one server, GB/s. */
export function intraRingGbs(model: ServerSpec, k: number): number {
  return model.intraServer.kind === 'full-mesh'
    ? intraPairGbs(model) * meshRings(k)
    : model.intraServer.gbsPerDirection;
}

/** What limits concurrent rings through a sequence of servers. */
export interface RingProfile {
  /** Concurrent rings (channels). */
  readonly channels: number;
  /** Rate of one channel, GB/s. */
  readonly channelGbs: number;
  readonly bottleneck: string;
  /** Largest intra-server hop latency, microseconds (0 when no server holds two devices). */
  readonly intraUs: number;
  /** Largest latency of a hop between servers, microseconds (0 with one server). */
  readonly crossUs: number;
}

/**
 * Concurrent rings through `servers` in order (wrapping around). `channels` rings each carry
 * an equal share; a channel runs at the slowest of: its link inside each server (a full-mesh
 * ring has its own lane; rings on a switch split each device's bandwidth), its flow between
 * consecutive servers (channel c leaves server j from its c-th device to the c-th device of
 * server j+1, so crossings spread over NICs and rails line up), and each shared pool (OCS
 * circuits) divided by the flows crossing it.
 */
export function ringProfile(
  topology: Topology,
  servers: readonly ServerShare[],
  channels: number,
): RingProfile {
  let channelGbs = Infinity;
  let bottleneck = 'none';
  const limit = (gbs: number, label: string): void => {
    if (gbs < channelGbs) {
      channelGbs = gbs;
      bottleneck = label;
    }
  };
  let intraUs = 0;
  let crossUs = 0;
  for (const s of servers) {
    if (s.devices.length < 2) continue;
    const model = s.run.model;
    intraUs = Math.max(intraUs, model.intraServer.latencyUs);
    if (model.intraServer.kind === 'full-mesh') limit(intraPairGbs(model), 'server (full mesh)');
    else limit(model.intraServer.gbsPerDirection / channels, `server (${fabricWord(model)})`);
  }
  const m = servers.length;
  if (m >= 2) {
    const pools = new Map<string, { uses: number; gbs: number }>();
    for (let j = 0; j < m; j += 1) {
      const a = servers[j];
      const b = servers[(j + 1) % m];
      if (a === undefined || b === undefined) continue;
      for (let c = 0; c < channels; c += 1) {
        const from = a.devices[c % a.devices.length] ?? 0;
        const to = b.devices[c % b.devices.length] ?? 0;
        const route = routeBetween(topology, from, to);
        crossUs = Math.max(crossUs, route.latencyUs);
        for (const hop of route.hops) {
          if (hop.sharedBy === undefined) limit(hop.gbsPerDirection, hop.level);
          else {
            const pool = pools.get(hop.sharedBy) ?? { uses: 0, gbs: hop.gbsPerDirection };
            pool.uses += 1;
            pools.set(hop.sharedBy, pool);
          }
        }
      }
    }
    for (const [key, pool] of pools)
      limit(pool.gbs / pool.uses, `ocs ${key} (shared by ${pool.uses} flows)`);
  }
  return { channels, channelGbs, bottleneck, intraUs, crossUs };
}

/** Channels a ring over these servers can run: the fewest any server supports. */
export function channelsFor(servers: readonly ServerShare[]): number {
  let channels = Infinity;
  for (const s of servers)
    channels = Math.min(channels, ringChannels(s.run.model, s.devices.length));
  return Number.isFinite(channels) ? channels : 1;
}

/**
 * Ring all-reduce (2(n-1) steps), all-gather and reduce-scatter (n-1 steps): each step every
 * device sends bytes/n, so `steps x bytes/n` cross the bottleneck at channels x channel rate.
 */
export function ringCost(
  p: Participants,
  op: CollectiveOp,
  bytes: number,
  profile: RingProfile,
): CostBreakdown {
  const n = p.count;
  const steps = op === 'all-reduce' ? 2 * (n - 1) : n - 1;
  const gbs = profile.channels * profile.channelGbs;
  return {
    ...term({
      algorithm: 'ring',
      steps,
      alphaUs: Math.max(profile.intraUs, profile.crossUs),
      bytesOnBottleneck: (steps * bytes) / n,
      betaGbs: gbs,
      bottleneck: profile.bottleneck,
      note: `${steps} steps of bytes/${n}; ${profile.channels} concurrent ring${profile.channels === 1 ? '' : 's'} x ${round(profile.channelGbs)} GB/s, limited by ${profile.bottleneck}`,
    }),
    phases: [],
  };
}

/**
 * Double binary tree all-reduce across servers, a chain inside each: 2 x (ceil(log2 m) hops
 * between servers + (k-1) inside the largest server) latency steps; each server sends and
 * receives about 2 x bytes, at the bandwidth the rings get (same links, same channels).
 */
export function treeCost(p: Participants, bytes: number, profile: RingProfile): CostBreakdown {
  const m = p.servers.length;
  const depth = Math.ceil(Math.log2(m));
  let kmax = 0;
  for (const s of p.servers) kmax = Math.max(kmax, s.devices.length);
  const steps = 2 * depth + 2 * (kmax - 1);
  const alphaSeconds = (2 * depth * profile.crossUs + 2 * (kmax - 1) * profile.intraUs) * 1e-6;
  const gbs = profile.channels * profile.channelGbs;
  const t = term({
    algorithm: 'tree',
    steps,
    alphaUs: steps === 0 ? 0 : (alphaSeconds / steps) * 1e6,
    bytesOnBottleneck: 2 * bytes,
    betaGbs: gbs,
    bottleneck: profile.bottleneck,
    note: `two binary trees over ${m} servers (depth ${depth}) plus a chain of ${kmax} in each; 2 x bytes at ${round(gbs)} GB/s, limited by ${profile.bottleneck}`,
  });
  return { ...t, phases: [] };
}

/** Rounds to two decimals for notes. */
export function round(x: number): number {
  return Math.round(x * 100) / 100;
}
