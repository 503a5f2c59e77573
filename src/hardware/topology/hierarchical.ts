import type { ServerSpec } from '../server.ts';
import type { CollectiveOp, CostBreakdown, CostTerm, PhaseCost } from './collective-cost.ts';
import { sumPhases, term } from './collective-cost.ts';
import type { Participants, ServerShare } from './participants.ts';
import { fabricWord, intraPairGbs, routeBetween } from './paths.ts';
import { intraRingGbs, round } from './ring.ts';
import type { Topology } from './topology.ts';

type PhaseOp = 'reduce-scatter' | 'all-gather' | 'all-reduce';

/**
 * Hierarchical all-reduce: reduce-scatter inside each server; reduce-scatter inside each
 * super-node among devices at the same local index (when the devices span several
 * super-nodes, each holding the same number of servers); all-reduce at the top among devices
 * at the same position (across super-nodes, or across servers); then all-gather back down.
 * All-gather and reduce-scatter run only their half. Each phase picks ring or direct,
 * whichever is faster. Needs the same number (at least 2) of devices on every server.
 * Returns the reason when it does not apply.
 */
export function hierarchicalCost(
  topology: Topology,
  p: Participants,
  op: CollectiveOp,
  bytes: number,
): CostBreakdown | string {
  const k = p.servers[0]?.devices.length ?? 0;
  if (p.servers.length < 2) return 'all devices are in one server';
  if (k < 2 || p.servers.some((s) => s.devices.length !== k))
    return 'needs the same number (at least 2) of devices on every server';
  if (op === 'all-to-all') return 'not an all-to-all algorithm';

  const sns = p.superNodes;
  const perSn = sns[0]?.servers.length ?? 0;
  const snLevel = sns.length >= 2 && perSn >= 2 && sns.every((s) => s.servers.length === perSn);
  // The groups of the top phase: super-nodes when there is a super-node level, else servers.
  const topGroups: number[][] = snLevel
    ? sns.map((s) => s.servers.flatMap((srv) => [...srv.devices]))
    : p.servers.map((s) => [...s.devices]);
  const topName = snLevel
    ? 'across super-nodes'
    : sns.length === 1
      ? 'across servers of the super-node'
      : 'across servers';
  const below = snLevel ? k * perSn : k;

  const down: PhaseCost[] = [intraPhase(p.servers, 'reduce-scatter', bytes)];
  if (snLevel)
    down.push(
      worst(
        sns.map((s) =>
          groupPhase(
            topology,
            s.servers.map((srv) => [...srv.devices]),
            'reduce-scatter',
            bytes / k,
            'in each super-node',
            s.servers[0],
          ),
        ),
      ),
    );
  const topOp: PhaseOp =
    op === 'all-reduce' ? 'all-reduce' : op === 'all-gather' ? 'all-gather' : 'reduce-scatter';
  const top = groupPhase(
    topology,
    topGroups,
    topOp,
    bytes / below,
    topName,
    sns.length === 1 ? p.servers[0] : undefined,
  );
  const up: PhaseCost[] = down
    .map((phase) => ({ ...phase, name: phase.name.replace('reduce-scatter', 'all-gather') }))
    .reverse();
  const phases =
    op === 'all-reduce'
      ? [...down, top, ...up]
      : op === 'reduce-scatter'
        ? [...down, top]
        : [top, ...up];
  const levels = snLevel
    ? `${k} per server, ${perSn} servers per super-node, ${sns.length} super-nodes`
    : `${k} per server, ${topGroups.length} ${sns.length === 1 ? 'servers in one super-node' : 'servers'}`;
  return sumPhases(phases, `${phases.length} phases over ${levels}`);
}

function worst(phases: readonly PhaseCost[]): PhaseCost {
  return phases.reduce((a, b) => (b.seconds > a.seconds ? b : a));
}

/** Reduce-scatter or all-gather of `payload` bytes inside every server (the slowest server counts). */
function intraPhase(
  servers: readonly ServerShare[],
  op: 'reduce-scatter' | 'all-gather',
  payload: number,
): PhaseCost {
  const models = new Map<string, { model: ServerSpec; k: number }>();
  for (const s of servers) models.set(s.run.model.id, { model: s.run.model, k: s.devices.length });
  const costs = [...models.values()].map(({ model, k }) => {
    const word = `server (${fabricWord(model)})`;
    const latency = model.intraServer.latencyUs;
    const ring = term({
      algorithm: 'ring',
      steps: k - 1,
      alphaUs: latency,
      bytesOnBottleneck: ((k - 1) * payload) / k,
      betaGbs: intraRingGbs(model, k),
      bottleneck: word,
      note: `ring over ${k} in ${model.id}`,
    });
    const mesh = model.intraServer.kind === 'full-mesh';
    const direct = term({
      algorithm: 'direct',
      steps: 1,
      alphaUs: latency,
      bytesOnBottleneck: mesh ? payload / k : ((k - 1) * payload) / k,
      betaGbs: mesh ? intraPairGbs(model) : model.intraServer.gbsPerDirection,
      bottleneck: word,
      note: mesh
        ? `direct over ${k - 1} dedicated links in ${model.id}`
        : `direct through the ${model.intraServer.kind} in ${model.id}`,
    });
    return ring.seconds <= direct.seconds ? ring : direct;
  });
  const slowest = costs.reduce((a, b) => (b.seconds > a.seconds ? b : a));
  return { ...slowest, name: `${op} in each server`, groupSize: servers[0]?.devices.length ?? 0 };
}

/**
 * A collective among groups of devices: flow i links the i-th device of every group into a
 * ring of its own (all flows concurrent). A flow runs at the slowest route between
 * consecutive groups; shared pools (OCS circuits) are divided among the flows that cross them.
 * Inside a super-node, direct exchange over the super-node fabric is also considered.
 */
function groupPhase(
  topology: Topology,
  groups: readonly (readonly number[])[],
  op: PhaseOp,
  payload: number,
  where: string,
  superNodeOf: ServerShare | undefined,
): PhaseCost {
  const g = groups.length;
  const flows = groups[0]?.length ?? 0;
  let gbs = Infinity;
  let bottleneck = 'none';
  let latency = 0;
  const pools = new Map<string, { uses: number; gbs: number }>();
  for (let j = 0; j < g; j += 1) {
    const a = groups[j] ?? [];
    const b = groups[(j + 1) % g] ?? [];
    for (let i = 0; i < flows; i += 1) {
      const route = routeBetween(topology, a[i] ?? 0, b[i] ?? 0);
      latency = Math.max(latency, route.latencyUs);
      for (const hop of route.hops) {
        if (hop.sharedBy !== undefined) {
          const pool = pools.get(hop.sharedBy) ?? { uses: 0, gbs: hop.gbsPerDirection };
          pool.uses += 1;
          pools.set(hop.sharedBy, pool);
        } else if (hop.gbsPerDirection < gbs) {
          gbs = hop.gbsPerDirection;
          bottleneck = hop.level;
        }
      }
    }
  }
  for (const [key, pool] of pools) {
    if (pool.gbs / pool.uses < gbs) {
      gbs = pool.gbs / pool.uses;
      bottleneck = `ocs ${key} (shared by ${pool.uses} flows)`;
    }
  }
  const steps = op === 'all-reduce' ? 2 * (g - 1) : g - 1;
  const name = `${op} ${where}`;
  const ring: CostTerm = term({
    algorithm: 'ring',
    steps,
    alphaUs: latency,
    bytesOnBottleneck: (steps * payload) / g,
    betaGbs: gbs,
    bottleneck,
    note: `${flows} concurrent rings of ${g}, each at ${round(gbs)} GB/s`,
  });
  let best = ring;
  const sn =
    superNodeOf?.superNode === null || superNodeOf === undefined
      ? undefined
      : topology.cluster.superNodes[superNodeOf.superNode];
  if (sn !== undefined && op !== 'all-reduce') {
    const direct = term({
      algorithm: 'direct',
      steps: 1,
      alphaUs: sn.latencyUs,
      bytesOnBottleneck: ((g - 1) * payload) / g,
      betaGbs: sn.gbsPerDirection,
      bottleneck: 'super-node',
      note: `direct among ${g} servers over the super-node fabric at ${sn.gbsPerDirection} GB/s per device`,
    });
    if (direct.seconds < ring.seconds) best = direct;
  }
  return { ...best, name, groupSize: g };
}
