import { bisectionOf, type Bisection } from './bisection.ts';
import { fabricWord } from './paths.ts';
import { renderHierarchy, type HierarchyPicture } from './render-tree.ts';
import type { LevelKind, Topology } from './topology.ts';

/** What `cube cluster show` reports, as `--json` prints it. */
export interface ClusterSummary {
  readonly name: string;
  readonly description: string;
  readonly devices: number;
  readonly servers: number;
  /** Nodes per level, outermost first. */
  readonly levels: readonly { readonly kind: LevelKind; readonly count: number }[];
  /** Devices per accelerator type, in order of first appearance. */
  readonly accelerators: readonly {
    readonly id: string;
    readonly name: string;
    readonly devices: number;
    readonly servers: number;
  }[];
  readonly serverModels: readonly {
    readonly id: string;
    readonly accelerator: string;
    readonly servers: number;
    readonly devicesPerServer: number;
    readonly intraServer: string;
  }[];
  /** Sum of dense bf16 peaks, PFLOPS (accelerators without a bf16 path count 0). */
  readonly peakBf16Pflops: number;
  /** Sum of device memory, GiB. */
  readonly memoryGiB: number;
  readonly bisection: Bisection;
  readonly fabric: {
    readonly kind: string;
    readonly tiers: readonly {
      readonly name: string;
      readonly serversPerGroup: number | null;
      readonly oversubscription: number;
    }[];
    readonly switchLatencyUs: number;
  } | null;
  readonly superNodes: readonly {
    readonly id: string;
    readonly servers: number;
    readonly devices: number;
    readonly gbsPerDirection: number;
    readonly latencyUs: number;
  }[];
  readonly ocs: {
    readonly latencyUs: number;
    readonly circuits: readonly {
      readonly between: readonly [string, string];
      readonly count: number;
      readonly gbsPerCircuit: number;
      readonly gbsPerDirection: number;
    }[];
  } | null;
  readonly hierarchy: HierarchyPicture;
}

/** Summarizes a cluster: counts per level and accelerator, peak, memory, bisection, picture. */
export function summarizeCluster(topology: Topology): ClusterSummary {
  const { cluster } = topology;
  const accelerators = new Map<
    string,
    { id: string; name: string; devices: number; servers: number }
  >();
  const models = new Map<string, ClusterSummary['serverModels'][number] & { servers: number }>();
  let peakTflops = 0;
  let memoryGiB = 0;
  for (const run of cluster.runs) {
    const devices = run.count * run.devicesPerServer;
    const a = accelerators.get(run.accelerator.id) ?? {
      id: run.accelerator.id,
      name: run.accelerator.name,
      devices: 0,
      servers: 0,
    };
    a.devices += devices;
    a.servers += run.count;
    accelerators.set(a.id, a);
    const key = `${run.model.id}/${run.devicesPerServer}`;
    const m = models.get(key) ?? {
      id: run.model.id,
      accelerator: run.accelerator.id,
      servers: 0,
      devicesPerServer: run.devicesPerServer,
      intraServer: fabricWord(run.model),
    };
    models.set(key, { ...m, servers: m.servers + run.count });
    peakTflops += devices * (run.accelerator.peakTflops.bf16 ?? 0);
    memoryGiB += devices * run.accelerator.memoryGiB;
  }
  const names = cluster.superNodes.map((s) => s.id);
  return {
    name: cluster.name,
    description: cluster.description,
    devices: cluster.deviceCount,
    servers: cluster.serverCount,
    levels: topology.levels.map((l) => ({ kind: l.kind, count: l.count })),
    accelerators: [...accelerators.values()],
    serverModels: [...models.values()],
    peakBf16Pflops: Math.round(peakTflops) / 1000,
    memoryGiB,
    bisection: bisectionOf(topology),
    fabric:
      cluster.fabric === null
        ? null
        : {
            kind: cluster.fabric.kind,
            tiers: cluster.fabric.tiers.map((t) => ({ ...t })),
            switchLatencyUs: cluster.fabric.switchLatencyUs,
          },
    superNodes: cluster.superNodes.map((s) => ({
      id: s.id,
      servers: s.serverCount,
      devices: s.deviceCount,
      gbsPerDirection: s.gbsPerDirection,
      latencyUs: s.latencyUs,
    })),
    ocs:
      cluster.ocs === null
        ? null
        : {
            latencyUs: cluster.ocs.latencyUs,
            circuits: cluster.ocs.circuits.map((c) => ({
              between: [names[c.a] ?? `sn${c.a}`, names[c.b] ?? `sn${c.b}`] as const,
              count: c.count,
              gbsPerCircuit: c.gbsPerCircuit,
              gbsPerDirection: c.count * c.gbsPerCircuit,
            })),
          },
    hierarchy: renderHierarchy(topology),
  };
}

/** The summary as text, the way `cube cluster show` prints it. */
export function formatClusterSummary(summary: ClusterSummary): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  const lines = [`${summary.name}: ${n(summary.devices)} devices in ${n(summary.servers)} servers`];
  if (summary.description !== '') lines.push(`  ${summary.description.trim()}`);
  lines.push(
    '',
    `hierarchy: ${summary.hierarchy.compact}`,
    ...summary.hierarchy.lines.map((l) => `  ${l}`),
  );
  lines.push(
    '',
    `levels:       ${summary.levels.map((l) => `${n(l.count)} ${l.kind}`).join(', ')}`,
  );
  lines.push(
    `accelerators: ${summary.accelerators.map((a) => `${n(a.devices)} × ${a.id} in ${n(a.servers)} servers`).join(', ')}`,
  );
  lines.push(`peak:         ${n(summary.peakBf16Pflops)} PFLOPS bf16 dense`);
  lines.push(
    `memory:       ${n(summary.memoryGiB)} GiB (${n(Math.round((summary.memoryGiB / 1024) * 10) / 10)} TiB)`,
  );
  const b = summary.bisection;
  lines.push(
    `bisection:    ${n(Math.round(b.gbsPerDirection))} GB/s per direction across ${b.cut === '' ? 'no cut' : b.cut}`,
    `              (${b.method}; ${b.cutsConsidered} cut${b.cutsConsidered === 1 ? '' : 's'})`,
  );
  if (summary.fabric !== null) {
    const tiers = summary.fabric.tiers
      .map((t) =>
        t.serversPerGroup === null
          ? `${t.name} (top)`
          : `${t.name} (${n(t.serversPerGroup)} servers per group${t.oversubscription === 1 ? '' : `, ${t.oversubscription}:1 up`})`,
      )
      .join(' → ');
    lines.push(`fabric:       ${summary.fabric.kind}: ${tiers}`);
  }
  if (summary.ocs !== null) {
    const circuits = summary.ocs.circuits
      .map((c) => `${c.between[0]}–${c.between[1]} ${c.count} × ${c.gbsPerCircuit} GB/s`)
      .join(', ');
    lines.push(
      `ocs:          ${circuits === '' ? 'no circuits' : circuits}; ${summary.ocs.latencyUs} µs`,
    );
  }
  return lines.join('\n');
}
