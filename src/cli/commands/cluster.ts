import type { Command } from 'commander';
import { CubeError } from '../../core/index.ts';
import {
  collectiveOps,
  createTopology,
  defaultCluster,
  estimateCollective,
  findNode,
  formatClusterSummary,
  loadClusterFile,
  pathBetween,
  replicaPeers,
  summarizeCluster,
} from '../../hardware/index.ts';
import type {
  AlgorithmKind,
  CollectiveEstimate,
  CollectiveOp,
  DevicePath,
  Topology,
} from '../../hardware/index.ts';
import { parsePositiveInt } from '../flags.ts';
import { printJson, renderTable, type CliOutput } from '../output.ts';

interface SourceFlags {
  cluster?: string;
  accelerator?: string;
  gpus?: number;
  json?: boolean;
}

/** The cluster a command works on: a file, or the default cluster of `--accelerator --gpus`. */
function topologyFrom(file: string | undefined, flags: SourceFlags): Topology {
  const path = file ?? flags.cluster;
  if (path !== undefined) {
    if (flags.accelerator !== undefined || flags.gpus !== undefined)
      throw new CubeError('BAD_FLAG', 'give a cluster file or --accelerator and --gpus, not both', {
        where: { field: '--accelerator' },
      });
    return createTopology(loadClusterFile(path));
  }
  if (flags.accelerator === undefined || flags.gpus === undefined)
    throw new CubeError(
      'BAD_FLAG',
      'which cluster? give a cluster file, or --accelerator ID and --gpus N',
      {
        where: { field: flags.accelerator === undefined ? '--accelerator' : '--gpus' },
        hint: 'e.g. cube cluster show examples/clusters/h100-16k-rail.yaml, or --accelerator h100-sxm --gpus 64',
      },
    );
  return createTopology(defaultCluster({ accelerator: flags.accelerator, gpus: flags.gpus }));
}

const units: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** Parses a size like `4096`, `256MiB`, `1.5GB`, `1e9`. */
export function parseBytes(value: string): number {
  const match = /^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*$/i.exec(value);
  const factor = match === null ? undefined : units[(match[2] ?? '').toLowerCase()];
  if (match === null || factor === undefined)
    throw new CubeError(
      'BAD_FLAG',
      `--bytes must be a size like 4096, 256MiB or 1GB, got "${value}"`,
      {
        where: { field: '--bytes', allowed: Object.keys(units).filter((u) => u !== '') },
      },
    );
  return Math.round(Number(match[1]) * factor);
}

/** Parses a device set: `all`, indices, ranges `0-63`, node addresses `sn1` or `sn1/srv07`. */
export function parseDeviceSet(topology: Topology, value: string): number[] {
  const out = new Set<number>();
  for (const raw of value.split(',')) {
    const item = raw.trim();
    if (item === '' || item === 'all') {
      for (let d = 0; d < topology.cluster.deviceCount; d += 1) out.add(d);
      continue;
    }
    const range = /^(\d+)-(\d+)$/.exec(item);
    if (range !== null) {
      const lo = Number(range[1]);
      const hi = Number(range[2]);
      if (hi < lo || hi >= topology.cluster.deviceCount)
        throw new CubeError(
          'BAD_FLAG',
          `--devices range ${item} is outside 0-${topology.cluster.deviceCount - 1}`,
          {
            where: { field: '--devices' },
          },
        );
      for (let d = lo; d <= hi; d += 1) out.add(d);
      continue;
    }
    if (/^\d+$/.test(item)) {
      const d = Number(item);
      if (d >= topology.cluster.deviceCount)
        throw new CubeError(
          'BAD_FLAG',
          `--devices: no device ${d} (0-${topology.cluster.deviceCount - 1})`,
          {
            where: { field: '--devices' },
          },
        );
      out.add(d);
      continue;
    }
    const node = findNode(topology, item);
    for (let d = node.firstDevice; d < node.firstDevice + node.deviceCount; d += 1) out.add(d);
  }
  return [...out];
}

function formatPath(path: DevicePath): string {
  const lines = [
    `${path.from.address} (${path.from.index}) → ${path.to.address} (${path.to.index}): ${path.kind}, within one ${path.commonLevel}`,
    `  bottleneck ${path.gbsPerDirection} GB/s per direction at ${path.bottleneck}; latency ${path.latencyUs} µs`,
  ];
  if (path.hops.length > 0)
    lines.push(
      '',
      renderTable(
        ['hop', 'kind', 'GB/s', 'µs', 'shared'],
        path.hops.map((h) => [
          h.level,
          h.kind,
          round(h.gbsPerDirection),
          h.latencyUs,
          h.sharedBy ?? '',
        ]),
      ),
    );
  return lines.join('\n');
}

function formatEstimate(e: CollectiveEstimate): string {
  const b = e.breakdown;
  const lines = [
    `${e.op} of ${e.bytes.toLocaleString('en-US')} bytes over ${e.devices} devices: ${e.algorithm}`,
    `  ${fmtSeconds(e.seconds)}; algBw ${round(e.algBwGbs)} GB/s, busBw ${round(e.busBwGbs)} GB/s`,
    `  α term ${fmtSeconds(b.alphaSeconds)} (${b.steps} steps), β term ${fmtSeconds(b.betaSeconds)} (${b.bytesOnBottleneck.toLocaleString('en-US')} bytes at ${round(b.betaGbs)} GB/s)`,
    `  bottleneck: ${b.bottleneck}`,
    `  ${b.note}`,
  ];
  if (b.phases.length > 0)
    lines.push(
      '',
      renderTable(
        ['phase', 'algorithm', 'steps', 'α µs', 'bytes', 'GB/s', 'time', 'bottleneck'],
        b.phases.map((p) => [
          p.name,
          p.algorithm,
          p.steps,
          p.alphaUs,
          p.bytesOnBottleneck,
          round(p.betaGbs),
          fmtSeconds(p.seconds),
          p.bottleneck,
        ]),
      ),
    );
  lines.push(
    '',
    renderTable(
      ['algorithm', 'time', 'note'],
      e.candidates.map((c) => [
        c.algorithm,
        c.seconds === null ? 'n/a' : fmtSeconds(c.seconds),
        c.reason ?? '',
      ]),
    ),
  );
  return lines.join('\n');
}

function fmtSeconds(seconds: number): string {
  if (seconds === 0) return '0 s';
  if (seconds < 1e-3) return `${round(seconds * 1e6)} µs`;
  if (seconds < 1) return `${round(seconds * 1e3)} ms`;
  return `${round(seconds)} s`;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

const algorithms: readonly AlgorithmKind[] = ['ring', 'tree', 'hierarchical', 'direct'];

/** `cube cluster show | path | collective`: the topology model from the command line. */
export function registerClusterCommands(program: Command, output: CliOutput): void {
  const cluster = program
    .command('cluster')
    .description('clusters: hierarchy, paths between devices, collective estimates');
  const gpus = parsePositiveInt('--gpus');

  cluster
    .command('show')
    .description('a cluster file (or --accelerator/--gpus): counts, peak, bisection, hierarchy')
    .argument('[file]', 'cluster file (YAML or JSON)')
    .option('--accelerator <id>', 'the default cluster of this accelerator (with --gpus)')
    .option('--gpus <n>', 'how many accelerators in the default cluster', gpus)
    .option('--json', 'print as JSON')
    .action((file: string | undefined, flags: SourceFlags) => {
      const summary = summarizeCluster(topologyFrom(file, flags));
      if (flags.json === true) printJson(output, summary);
      else output.out(formatClusterSummary(summary));
    });

  cluster
    .command('peers')
    .description(
      "where each server's checkpoint replicas (L2) go: another super-node where possible",
    )
    .argument('[file]', 'cluster file (YAML or JSON)')
    .option('--accelerator <id>', 'the default cluster of this accelerator (with --gpus)')
    .option('--gpus <n>', 'how many accelerators in the default cluster', gpus)
    .option('--json', 'print as JSON')
    .action((file: string | undefined, flags: SourceFlags) => {
      const pairs = replicaPeers(topologyFrom(file, flags));
      if (flags.json === true) printJson(output, pairs);
      else {
        const crossing = pairs.filter((p) => p.crossesDomain).length;
        output.out(
          [
            renderTable(
              ['server', 'replicas to', 'other domain'],
              pairs.map((p) => [p.serverAddress, p.peerAddress, p.crossesDomain ? 'yes' : 'no']),
            ),
            '',
            `${crossing} of ${pairs.length} servers replicate into another failure domain`,
          ].join('\n'),
        );
      }
    });

  cluster
    .command('path')
    .description('the path between two devices: hops, bottleneck bandwidth, latency')
    .argument('<from>', 'device index or address (e.g. sn1/srv07/gpu3)')
    .argument('<to>', 'device index or address')
    .option('--cluster <file>', 'cluster file (YAML or JSON)')
    .option('--accelerator <id>', 'the default cluster of this accelerator (with --gpus)')
    .option('--gpus <n>', 'how many accelerators in the default cluster', gpus)
    .option('--json', 'print as JSON')
    .action((from: string, to: string, flags: SourceFlags) => {
      const path = pathBetween(topologyFrom(undefined, flags), from, to);
      if (flags.json === true) printJson(output, path);
      else output.out(formatPath(path));
    });

  cluster
    .command('collective')
    .description('time and bus bandwidth of a collective over a set of devices')
    .argument('<op>', `one of ${collectiveOps.join(', ')}`)
    .requiredOption('--bytes <size>', 'size: 4096, 256MiB, 1GB, ...')
    .option(
      '--devices <set>',
      'all, indices, ranges (0-63), node addresses (sn1, sn1/srv07)',
      'all',
    )
    .option('--algorithm <kind>', `force one of ${algorithms.join(', ')}`)
    .option('--cluster <file>', 'cluster file (YAML or JSON)')
    .option('--accelerator <id>', 'the default cluster of this accelerator (with --gpus)')
    .option('--gpus <n>', 'how many accelerators in the default cluster', gpus)
    .option('--json', 'print as JSON')
    .action(
      (op: string, flags: SourceFlags & { bytes: string; devices: string; algorithm?: string }) => {
        if (!(collectiveOps as readonly string[]).includes(op))
          throw new CubeError('BAD_FLAG', `unknown collective "${op}"`, {
            where: { field: '<op>', allowed: [...collectiveOps] },
          });
        if (
          flags.algorithm !== undefined &&
          !(algorithms as readonly string[]).includes(flags.algorithm)
        )
          throw new CubeError('BAD_FLAG', `unknown algorithm "${flags.algorithm}"`, {
            where: { field: '--algorithm', allowed: [...algorithms] },
          });
        const topology = topologyFrom(undefined, flags);
        const estimate = estimateCollective(topology, {
          op: op as CollectiveOp,
          bytes: parseBytes(flags.bytes),
          devices: parseDeviceSet(topology, flags.devices),
          ...(flags.algorithm === undefined ? {} : { algorithm: flags.algorithm as AlgorithmKind }),
        });
        if (flags.json === true) printJson(output, estimate);
        else output.out(formatEstimate(estimate));
      },
    );
}
