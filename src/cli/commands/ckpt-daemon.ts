import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { Option, type Command } from 'commander';
import { pino } from 'pino';
import { CubeError, parseCpuList, pinProcess } from '../../core/index.ts';
import {
  CheckpointDaemon,
  peerAccessFileSchema,
  readPeerTls,
  startLocalApi,
  type DaemonLog,
  type PeerAccess,
  type PeerAddress,
  type Registration,
} from '../../ckpt/daemon/index.ts';
import { levels, type Level } from '../../ckpt/index.ts';
import {
  ipcIssue,
  niceEveryThread,
  toDaemonSchema,
  type FromDaemon,
  type ToDaemon,
} from '../../agent/index.ts';
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

function parseNice(value: string): number {
  const n = /^\d{1,2}$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 19)
    throw new CubeError('BAD_FLAG', `--nice must be an integer from 0 to 19, got "${value}"`, {
      where: { field: '--nice' },
    });
  return n;
}

/**
 * `--peer-access FILE`: per job, this node's peer keys and grants (the shape of a launch
 * command's `checkpoint.peerAccess`), for a daemon run without an agent. The file holds keys:
 * one that others may read or write is refused.
 */
function readPeerAccess(file: string): Record<string, PeerAccess> {
  let text: string;
  let mode: number;
  try {
    mode = statSync(file).mode & 0o777;
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new CubeError('FILE_NOT_FOUND', `--peer-access ${file} cannot be read`, {
      where: { file, field: '--peer-access' },
      cause,
    });
  }
  if ((mode & 0o077) !== 0)
    throw new CubeError(
      'BAD_FLAG',
      `--peer-access ${file} has mode ${mode.toString(8).padStart(4, '0')}: it holds keys, so only its owner may read it (chmod 600)`,
      { where: { file, field: '--peer-access' } },
    );
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new CubeError('FILE_UNREADABLE', `--peer-access ${file} is not valid JSON`, {
      where: { file, field: '--peer-access' },
      cause,
    });
  }
  const parsed = peerAccessFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CubeError(
      'INVALID_FILE',
      `--peer-access ${file}: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`,
      { where: { file, field: '--peer-access' } },
    );
  }
  return parsed.data;
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
  ipc?: boolean;
  nice?: number;
  cpus?: number[];
  peerAccess?: string;
  ckptTlsCert?: string;
  ckptTlsKey?: string;
  ckptCa?: string;
}

/** The TLS files of `cube agent` and `cube ckpt daemon`: all three or none. */
export function peerTlsFiles(flags: {
  ckptTlsCert?: string;
  ckptTlsKey?: string;
  ckptCa?: string;
}): { certFile: string; keyFile: string; caFile: string } | undefined {
  const given = [flags.ckptTlsCert, flags.ckptTlsKey, flags.ckptCa];
  if (given.every((f) => f === undefined)) return undefined;
  if (
    flags.ckptTlsCert === undefined ||
    flags.ckptTlsKey === undefined ||
    flags.ckptCa === undefined
  )
    throw new CubeError(
      'BAD_FLAG',
      '--ckpt-tls-cert, --ckpt-tls-key and --ckpt-ca go together: give all three or none',
      { where: { field: flags.ckptTlsCert === undefined ? '--ckpt-tls-cert' : '--ckpt-ca' } },
    );
  return { certFile: flags.ckptTlsCert, keyFile: flags.ckptTlsKey, caFile: flags.ckptCa };
}

/** A daemon that tells its supervisor about each rank registration (to replay after a restart). */
class SupervisedDaemon extends CheckpointDaemon {
  onRegister: ((job: string, rank: number, registration: Registration) => void) | null = null;

  override register(job: string, rank: number, registration: Registration): void {
    super.register(job, rank, registration);
    this.onRegister?.(job, rank, registration);
  }
}

/** Sends to the parent over the IPC channel; a closed channel drops the message (we exit soon). */
function sendToParent(message: FromDaemon): void {
  if (process.send === undefined || !process.connected) return;
  process.send(message, undefined, {}, () => undefined);
}

/** Carries out one message from the supervising agent; a bad one is logged and ignored. */
function obey(daemon: CheckpointDaemon, log: DaemonLog, raw: unknown): void {
  const parsed = toDaemonSchema.safeParse(raw);
  if (!parsed.success) {
    // Never the message itself: a configure message carries peer keys.
    log.warn(
      { why: ipcIssue(toDaemonSchema, raw) },
      'ignoring a message from the agent this daemon does not understand',
    );
    return;
  }
  const message: ToDaemon = parsed.data;
  try {
    switch (message.kind) {
      case 'configure':
        daemon.setL3Root(message.jobId, message.l3Root);
        daemon.setReplicaPeer(message.replicaPeer);
        daemon.setPeers(message.peers);
        if (message.peerAccess !== undefined)
          daemon.setPeerAccess(message.jobId, message.peerAccess);
        break;
      case 'register': {
        const { worldSize, localRanks, l3Every, everySteps, keep } = message.registration;
        daemon.register(message.jobId, message.rank, {
          worldSize,
          localRanks,
          ...(l3Every === undefined ? {} : { l3Every }),
          ...(everySteps === undefined ? {} : { everySteps }),
          ...(keep === undefined ? {} : { keep }),
        });
        break;
      }
      default:
        message satisfies never;
    }
  } catch (error) {
    log.warn({ kind: message.kind, err: String(error) }, 'a message from the agent failed');
  }
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
    .option(
      '--nice <n>',
      'once started, lower the CPU priority of every thread of the daemon to this niceness (0..19)',
      parseNice,
    )
    .option(
      '--cpus <list>',
      "keep every thread of the daemon on these CPUs (the node's housekeeping cores), e.g. 12-15, from before its start-up",
      (value: string) => parseCpuList(value, '--cpus'),
    )
    .option(
      '--peer-access <file>',
      "JSON file (mode 0600) of this node's peer keys and grants per job: {JOB: {attempt, outgoing, incoming}}; cube agent passes them itself",
    )
    .option('--ckpt-tls-cert <file>', "TLS on the peer port: this node's certificate (PEM)")
    .option('--ckpt-tls-key <file>', 'its private key (PEM, mode 0600)')
    .option('--ckpt-ca <file>', "the CA that signed every node's certificate (PEM)")
    .addOption(
      new Option(
        '--ipc',
        'supervised by cube agent over a Node IPC channel: ready/commit messages out, configuration in; exits when the channel closes',
      ).hideHelp(),
    )
    .action(async (flags: DaemonFlags) => {
      if (flags.ipc === true && process.send === undefined)
        throw new CubeError(
          'BAD_FLAG',
          '--ipc needs a Node IPC channel to its parent; only cube agent starts the daemon this way',
          { where: { field: '--ipc' } },
        );
      if ((flags.replicaPeer?.length ?? 0) > 1)
        throw new CubeError('BAD_FLAG', '--replica-peer may be given once', {
          where: { field: '--replica-peer' },
        });
      const replicaPeer = flags.replicaPeer?.[0];
      const ipc = flags.ipc === true;
      const peerAccess = flags.peerAccess === undefined ? {} : readPeerAccess(flags.peerAccess);
      const tlsFiles = peerTlsFiles(flags);
      const tls = tlsFiles === undefined ? undefined : readPeerTls(tlsFiles);
      const log: DaemonLog = pino({ name: 'cube-ckpt-daemon', level: 'info' });
      const daemon = new SupervisedDaemon({
        node: flags.node,
        log,
        ...(ipc ? { onCommit: (c) => sendToParent({ kind: 'committed', ...c }) } : {}),
        l1Root: flags.l1,
        l2Root: flags.l2,
        ...(flags.l3 === undefined ? {} : { l3Root: flags.l3 }),
        listen: flags.listen,
        peerAccess,
        ...(tls === undefined ? {} : { tls }),
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
      const onMessage = (raw: unknown): void => obey(daemon, log, raw);
      if (ipc) {
        daemon.onRegister = (jobId, rank, registration) =>
          sendToParent({ kind: 'registered', jobId, rank, registration });
        process.on('message', onMessage);
      }
      try {
        if (flags.cpus !== undefined) {
          // Before start-up, so threads created from here on inherit the CPUs.
          const threads = pinProcess(process.pid, flags.cpus, '--cpus');
          log.info({ cpus: flags.cpus, threads }, 'checkpoint daemon runs on its own CPUs');
        }
        await daemon.start();
        const api = await startLocalApi(daemon, flags.socket).catch(async (error: unknown) => {
          await daemon.stop();
          throw error;
        });
        if (flags.nice !== undefined && flags.nice > 0) {
          // After start-up, which at a low priority on a busy node took from 18 s to a minute.
          const threads = niceEveryThread(flags.nice);
          log.info({ nice: flags.nice, threads }, 'checkpoint daemon runs at a lower CPU priority');
        }
        output.out(
          JSON.stringify({
            ready: true,
            node: flags.node,
            peer: daemon.address,
            socket: flags.socket,
          }),
        );
        if (ipc) sendToParent({ kind: 'ready', peer: daemon.address, socket: flags.socket });
        await new Promise<void>((resolve) => {
          process.once('SIGTERM', resolve);
          process.once('SIGINT', resolve);
          // The agent is gone (even SIGKILLed): a daemon never outlives its supervisor.
          if (ipc) {
            if (!process.connected) resolve();
            process.once('disconnect', resolve);
          }
        });
        await api.close();
        await daemon.stop();
      } finally {
        process.off('message', onMessage);
        // An open IPC channel would keep this process alive (after a failed start too).
        if (ipc && process.connected) process.disconnect();
      }
    });
}
