import { hostname } from 'node:os';
import type { Command } from 'commander';
import { CubeError } from '../../core/index.ts';
import { CheckpointDaemon, startLocalApi, type PeerAddress } from '../../ckpt/daemon/index.ts';
import { levels, type Level } from '../../ckpt/index.ts';
import type { CliOutput } from '../output.ts';

function parsePeer(flag: string): (value: string, previous?: PeerAddress[]) => PeerAddress[] {
  return (value, previous = []) => {
    const match = /^([A-Za-z0-9._-]+)=([^:\s]+):(\d{1,5})$/.exec(value);
    if (match === null)
      throw new CubeError('BAD_FLAG', `${flag} must be NODE=HOST:PORT, got "${value}"`, {
        where: { field: flag },
      });
    return [...previous, { node: match[1] ?? '', host: match[2] ?? '', port: Number(match[3]) }];
  };
}

function parseListen(value: string): { host: string; port: number } {
  const match = /^([^:\s]+):(\d{1,5})$/.exec(value);
  if (match === null)
    throw new CubeError('BAD_FLAG', `--listen must be HOST:PORT, got "${value}"`, {
      where: { field: '--listen' },
    });
  return { host: match[1] ?? '', port: Number(match[2]) };
}

function parseKeep(value: string): Partial<Record<Level, number>> {
  const keep: Partial<Record<Level, number>> = {};
  for (const part of value.split(',')) {
    const [level, count] = part.split('=');
    const n = Number(count);
    if (!levels.includes(level as Level) || !Number.isInteger(n) || n < 1)
      throw new CubeError('BAD_FLAG', `--keep must look like L1=2,L2=2,L3=3, got "${value}"`, {
        where: { field: '--keep', allowed: [...levels] },
      });
    keep[level as Level] = n;
  }
  return keep;
}

function positiveNumber(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0)
      throw new CubeError('BAD_FLAG', `${flag} must be a positive number, got "${value}"`, {
        where: { field: flag },
      });
    return n;
  };
}

interface DaemonFlags {
  node: string;
  l1: string;
  l2: string;
  l3?: string;
  socket: string;
  listen: { host: string; port: number };
  replicaPeer?: PeerAddress[];
  peer?: PeerAddress[];
  bandwidthMbps?: number;
  l3Every?: number;
  keep?: Partial<Record<Level, number>>;
  leaseTimeoutS?: number;
}

/** `cube ckpt daemon`: the node's checkpoint daemon, until SIGTERM or SIGINT. */
export function registerCkptDaemonCommand(ckpt: Command, output: CliOutput): void {
  ckpt
    .command('daemon')
    .description("run this node's checkpoint daemon: L1 commit, L2 replication, L3 persistence, GC")
    .option('--node <name>', "this node's name", hostname())
    .requiredOption('--l1 <dir>', 'L1 level root on tmpfs, e.g. /dev/shm/cube')
    .requiredOption('--l2 <dir>', 'where replicas from peers are kept')
    .option('--l3 <dir>', 'durable level root (shared filesystem)')
    .requiredOption('--socket <path>', 'Unix socket of the local API (CUBE_CKPT_SOCKET)')
    .option('--listen <host:port>', 'peer listener', parseListen, { host: '127.0.0.1', port: 0 })
    .option(
      '--replica-peer <node=host:port>',
      "the peer that keeps this node's replicas",
      parsePeer('--replica-peer'),
    )
    .option('--peer <node=host:port>', 'a peer to restore from (repeatable)', parsePeer('--peer'))
    .option(
      '--bandwidth-mbps <n>',
      'cap on replication traffic, MB/s',
      positiveNumber('--bandwidth-mbps'),
    )
    .option(
      '--l3-every <k>',
      'persist every k-th checkpoint to L3 (default 1)',
      positiveNumber('--l3-every'),
    )
    .option('--keep <L1=n,L2=n,L3=n>', 'retention per level', parseKeep)
    .option(
      '--lease-timeout-s <s>',
      'how long a slot reuse waits for replication',
      positiveNumber('--lease-timeout-s'),
    )
    .action(async (flags: DaemonFlags) => {
      if ((flags.replicaPeer?.length ?? 0) > 1)
        throw new CubeError('BAD_FLAG', '--replica-peer may be given once', {
          where: { field: '--replica-peer' },
        });
      const replicaPeer = flags.replicaPeer?.[0];
      const daemon = new CheckpointDaemon({
        node: flags.node,
        l1Root: flags.l1,
        l2Root: flags.l2,
        ...(flags.l3 === undefined ? {} : { l3Root: flags.l3 }),
        listen: flags.listen,
        ...(replicaPeer === undefined ? {} : { replicaPeer }),
        peers: flags.peer ?? [],
        ...(flags.bandwidthMbps === undefined
          ? {}
          : { replicationBytesPerSecond: flags.bandwidthMbps * 1e6 }),
        ...(flags.l3Every === undefined ? {} : { defaultL3Every: Math.round(flags.l3Every) }),
        ...(flags.keep === undefined ? {} : { keep: flags.keep }),
        ...(flags.leaseTimeoutS === undefined
          ? {}
          : { leaseTimeoutMs: flags.leaseTimeoutS * 1000 }),
      });
      await daemon.start();
      const api = await startLocalApi(daemon, flags.socket);
      output.out(
        JSON.stringify({
          ready: true,
          node: flags.node,
          peer: daemon.address,
          socket: flags.socket,
        }),
      );
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      await api.close();
      await daemon.stop();
    });
}
