import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { CubeError, parseCpuList } from '../../core/index.ts';
import {
  NodeAgent,
  readMetricsToken,
  selectDevicePlugin,
  type NodeAgentOptions,
} from '../../agent/index.ts';
import { readPeerTls } from '../../ckpt/daemon/index.ts';
import { peerTlsFiles } from './ckpt-daemon.ts';
import { parsePositiveInt } from '../flags.ts';
import type { CliOutput } from '../output.ts';

function parseLabels(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const labels = { ...previous };
  for (const part of value.split(',')) {
    if (part.trim() === '') continue;
    const match = /^([A-Za-z0-9._/-]+)=([^,]*)$/.exec(part.trim());
    if (match === null)
      throw new CubeError(
        'BAD_FLAG',
        `--labels must look like server=s0,superNode=sn0, got "${value}"`,
        {
          where: { field: '--labels' },
        },
      );
    labels[match[1] ?? ''] = match[2] ?? '';
  }
  return labels;
}

function parseListen(value: string, flag = '--ckpt-listen'): { host: string; port: number } {
  const match = /^([^:\s]+):(\d{1,5})$/.exec(value);
  if (match === null || Number(match[2]) > 65535)
    throw new CubeError('BAD_FLAG', `${flag} must be HOST:PORT, got "${value}"`, {
      where: { field: flag },
    });
  return { host: match[1] ?? '', port: Number(match[2]) };
}

function parseNice(value: string): number {
  const n = /^\d{1,2}$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 19)
    throw new CubeError('BAD_FLAG', `--ckpt-nice must be an integer from 0 to 19, got "${value}"`, {
      where: { field: '--ckpt-nice' },
      hint: "0 keeps the agent's priority; 19 is the lowest",
    });
  return n;
}

function parseRole(value: string): 'worker' | 'spare' {
  if (value !== 'worker' && value !== 'spare')
    throw new CubeError('BAD_FLAG', `--role must be worker or spare, got "${value}"`, {
      where: { field: '--role', allowed: ['worker', 'spare'] },
    });
  return value;
}

function parseBytes(flag: string): (value: string) => number {
  return (value) => {
    const match = /^(\d+)\s*(B|KiB|MiB|GiB)?$/i.exec(value.trim());
    const scale: Record<string, number> = { b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };
    const n =
      match === null ? NaN : Number(match[1]) * (scale[(match[2] ?? 'b').toLowerCase()] ?? 1);
    if (!Number.isSafeInteger(n) || n <= 0)
      throw new CubeError('BAD_FLAG', `${flag} must be a size such as 16MiB, got "${value}"`, {
        where: { field: flag },
      });
    return n;
  };
}

interface AgentFlags {
  server: string;
  token: string;
  name: string;
  devices: string;
  labels?: Record<string, string>;
  role?: 'worker' | 'spare';
  dataDir?: string;
  l1?: string;
  ckptListen: { host: string; port: number };
  ckptNice: number;
  ckptCpus?: number[];
  heartbeatMs?: number;
  probeCommand?: string;
  probeIntervalMs?: number;
  logMaxBytes?: number;
  logKeep?: number;
  ckptTlsCert?: string;
  ckptTlsKey?: string;
  ckptCa?: string;
  metricsListen?: { host: string; port: number };
  metricsTokenFile?: string;
  metricsPublic?: boolean;
}

/**
 * The metrics listener the flags ask for (none by default). Every port Cube opens
 * authenticates: a listener needs a token file, or `--metrics-public` to say it is meant to be
 * open; checked before anything starts (exit 2).
 */
function metricsListenOf(flags: AgentFlags): NodeAgentOptions['metrics'] {
  if (flags.metricsListen === undefined) {
    if (flags.metricsTokenFile !== undefined || flags.metricsPublic === true)
      throw new CubeError(
        'BAD_FLAG',
        `${flags.metricsPublic === true ? '--metrics-public' : '--metrics-token-file'} needs --metrics-listen`,
        { where: { field: '--metrics-listen' } },
      );
    return undefined;
  }
  if (flags.metricsTokenFile !== undefined && flags.metricsPublic === true)
    throw new CubeError(
      'BAD_FLAG',
      '--metrics-token-file and --metrics-public exclude each other',
      {
        where: { field: '--metrics-public' },
      },
    );
  if (flags.metricsPublic === true) return { ...flags.metricsListen, access: { kind: 'public' } };
  if (flags.metricsTokenFile === undefined)
    throw new CubeError(
      'BAD_FLAG',
      '--metrics-listen needs --metrics-token-file (or --metrics-public)',
      {
        where: { field: '--metrics-token-file' },
        hint: 'put a token in a file (openssl rand -base64 32 > F; chmod 600 F) and give Prometheus the same one',
      },
    );
  try {
    return {
      ...flags.metricsListen,
      access: { kind: 'token', token: readMetricsToken(flags.metricsTokenFile) },
    };
  } catch (error) {
    // A bad token file is a bad flag (exit 2), not a run-time failure.
    if (error instanceof CubeError)
      throw new CubeError('BAD_FLAG', error.message, {
        where: error.where,
        ...(error.hint === undefined ? {} : { hint: error.hint }),
        cause: error,
      });
    throw error;
  }
}

/**
 * `cube agent`: this node's agent, until SIGTERM or SIGINT (which stop its ranks first). Prints
 * one JSON line `{joined: true, nodeId, name, socket, ckptSocket, peer}` once it has joined.
 */
export function registerAgentCommand(program: Command, output: CliOutput): void {
  program
    .command('agent')
    .description('run the node agent: join the control plane, report devices and health, run ranks')
    .requiredOption('--server <url>', 'the control plane, e.g. http://10.0.0.1:7070')
    .requiredOption('--token <join-token>', "the cluster's join token")
    .option('--name <name>', "this node's name", hostname())
    .option('--devices <spec>', 'cpu:N, nvidia, amd or auto', 'auto')
    .option('--labels <k=v,...>', 'node labels, e.g. server=s0,superNode=sn0', parseLabels)
    .option('--role <role>', 'worker or spare', parseRole)
    .option(
      '--data-dir <dir>',
      'credential, logs, replicas (default ~/.local/share/cube/agent-<name>)',
    )
    .option('--l1 <dir>', 'L1 checkpoint root on tmpfs (default /dev/shm/cube-<name>)')
    .option(
      '--ckpt-listen <host:port>',
      "the checkpoint daemon's peer listener",
      (value: string) => parseListen(value),
      {
        host: '127.0.0.1',
        port: 0,
      },
    )
    .option(
      '--ckpt-nice <n>',
      "the checkpoint daemon's niceness, 0..19: its background I/O yields CPU to the ranks",
      parseNice,
      10,
    )
    .option(
      '--ckpt-cpus <list>',
      "the node's housekeeping cores, e.g. 60-63: the checkpoint daemon's threads and each rank's checkpoint thread run only there, the ranks on the other CPUs",
      (value: string) => parseCpuList(value, '--ckpt-cpus'),
    )
    .option(
      '--heartbeat-ms <ms>',
      'heartbeat interval (default: as the control plane says)',
      parsePositiveInt('--heartbeat-ms'),
    )
    .option('--probe-command <cmd>', 'a health check run with /bin/sh -c; non-zero exit is a fault')
    .option(
      '--probe-interval-ms <ms>',
      'how often devices and probes are checked (default 5000)',
      parsePositiveInt('--probe-interval-ms'),
    )
    .option(
      '--log-max-bytes <size>',
      'rotate a rank log at this size (default 16MiB)',
      parseBytes('--log-max-bytes'),
    )
    .option(
      '--log-keep <n>',
      'rotated rank log files kept (default 3)',
      parsePositiveInt('--log-keep'),
    )
    .option(
      '--ckpt-tls-cert <file>',
      "TLS on the checkpoint peer port: this node's certificate (PEM)",
    )
    .option('--ckpt-tls-key <file>', 'its private key (PEM, mode 0600)')
    .option('--ckpt-ca <file>', "the CA that signed every node's certificate (PEM)")
    .option(
      '--metrics-listen <host:port>',
      'serve Prometheus metrics (agent and checkpoint daemon) at http://HOST:PORT/metrics (default: off)',
      (value: string) => parseListen(value, '--metrics-listen'),
    )
    .option(
      '--metrics-token-file <file>',
      'the bearer token /metrics requires (a file of mode 0600)',
    )
    .option('--metrics-public', 'serve /metrics without a token')
    .action(async (flags: AgentFlags) => {
      const metrics = metricsListenOf(flags);
      const ckptTls = peerTlsFiles(flags);
      // Checked here, before anything starts: a bad file is a bad flag (exit 2).
      if (ckptTls !== undefined) readPeerTls(ckptTls);
      const devices = await selectDevicePlugin(flags.devices);
      const dataDir =
        flags.dataDir ??
        join(process.env.HOME ?? '.', '.local', 'share', 'cube', `agent-${flags.name}`);
      const agent = new NodeAgent({
        server: flags.server,
        joinToken: flags.token,
        name: flags.name,
        dataDir,
        devices,
        ckptListen: flags.ckptListen,
        ckptNice: flags.ckptNice,
        ...(flags.ckptCpus === undefined ? {} : { ckptCpus: flags.ckptCpus }),
        ...(ckptTls === undefined ? {} : { ckptTls }),
        ...(flags.labels === undefined ? {} : { labels: flags.labels }),
        ...(flags.role === undefined ? {} : { role: flags.role }),
        ...(flags.l1 === undefined ? {} : { l1Root: flags.l1 }),
        ...(flags.heartbeatMs === undefined ? {} : { heartbeatMs: flags.heartbeatMs }),
        ...(flags.probeCommand === undefined ? {} : { probeCommand: flags.probeCommand }),
        ...(flags.probeIntervalMs === undefined ? {} : { probeIntervalMs: flags.probeIntervalMs }),
        ...(flags.logMaxBytes === undefined ? {} : { logMaxBytes: flags.logMaxBytes }),
        ...(flags.logKeep === undefined ? {} : { logKeepFiles: flags.logKeep }),
        ...(metrics === undefined ? {} : { metrics }),
      });
      const stopping = new AbortController();
      const onSignal = (): void => stopping.abort();
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
      try {
        try {
          await agent.start({ signal: stopping.signal });
        } catch (error) {
          // Stopped while it was still joining: nothing ran yet, nothing failed.
          if (stopping.signal.aborted) return;
          throw error;
        }
        const s = agent.snapshot();
        output.out(
          JSON.stringify({
            joined: true,
            nodeId: s.nodeId,
            name: s.name,
            socket: s.socketPath,
            ckptSocket: s.ckptSocketPath,
            peer: s.peer,
            ...(agent.metricsAddress === null
              ? {}
              : { metrics: `${agent.metricsAddress.host}:${agent.metricsAddress.port}` }),
          }),
        );
        const end = await Promise.race([
          agent.done,
          new Promise<'signal'>((resolve) =>
            stopping.signal.addEventListener('abort', () => resolve('signal')),
          ),
        ]);
        if (end === 'signal') await agent.stop();
        if (end === 'killed')
          throw new CubeError(
            'INFEASIBLE',
            `agent ${flags.name} stopped by an injected kill-node fault`,
            {
              where: { node: flags.name },
            },
          );
      } finally {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
    });
}
