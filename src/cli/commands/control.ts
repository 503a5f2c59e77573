import { readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import type { Command } from 'commander';
import { CubeError } from '../../core/index.ts';
import { adminTokensPath, ControlPlane } from '../../control/control-plane.ts';
import {
  parseJobSpec,
  type Event,
  type EventOf,
  type Job,
  type Node,
} from '../../control/model/index.ts';
import { ApiClient } from '../api-client.ts';
import { resolveCredentials, saveCredentials } from '../credentials.ts';
import { printJson, processOutput, renderTable, type CliOutput } from '../output.ts';
import { ProgressLine } from '../progress-line.ts';
import { registerTokenCommands } from './token.ts';

interface ServerFlags {
  server?: string;
  token?: string;
  json?: boolean;
}

function client(flags: ServerFlags): ApiClient {
  return new ApiClient(resolveCredentials(flags));
}

function withServerFlags(command: Command): Command {
  return command
    .option('--server <url>', 'control plane URL (default: from `cube login`)')
    .option('--token <token>', 'API token (default: from `cube login`)');
}

const terminal: readonly string[] = ['succeeded', 'failed', 'cancelled'];

/** The status line of a command that waits; off with `--json`, plain unless stderr is a TTY. */
function progressFor(output: CliOutput, json: boolean | undefined): ProgressLine {
  return new ProgressLine({
    mode: ProgressLine.modeFor({
      json: json === true,
      isTty: output === processOutput && process.stderr.isTTY,
    }),
    output,
  });
}

/** A TCP port flag (0-65535); the error names the flag. */
export function parsePort(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65535)
      throw new CubeError('BAD_FLAG', `${flag} must be a port number 0-65535, got "${value}"`, {
        where: { field: flag },
      });
    return n;
  };
}

/** A flag value that must be a finite number > 0; the error names the flag. */
export function parsePositiveNumber(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n <= 0)
      throw new CubeError('BAD_FLAG', `${flag} must be a number > 0, got "${value}"`, {
        where: { field: flag },
      });
    return n;
  };
}

/** `--tls-cert` and `--tls-key` read, or null when neither is given. */
function readTlsFlags(flags: {
  tlsCert?: string;
  tlsKey?: string;
}): { cert: Buffer; key: Buffer } | null {
  if (flags.tlsCert === undefined && flags.tlsKey === undefined) return null;
  if (flags.tlsCert === undefined || flags.tlsKey === undefined)
    throw new CubeError('BAD_FLAG', '--tls-cert and --tls-key go together', {
      where: { field: flags.tlsCert === undefined ? '--tls-cert' : '--tls-key' },
    });
  const read = (file: string, flag: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (cause) {
      throw new CubeError('FILE_NOT_FOUND', `cannot read ${flag} ${file}`, {
        cause,
        where: { file, field: flag },
      });
    }
  };
  return { cert: read(flags.tlsCert, '--tls-cert'), key: read(flags.tlsKey, '--tls-key') };
}

/** A flag value that must be an integer >= 0; the error names the flag. */
export function parseNonNegativeInt(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < 0)
      throw new CubeError('BAD_FLAG', `${flag} must be an integer >= 0, got "${value}"`, {
        where: { field: flag },
      });
    return n;
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function ago(ms: number | null): string {
  if (ms === null) return '-';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 90) return `${s}s`;
  if (s < 5400) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

/** A straggler's evidence in words: its step time against the gang's, over which steps. */
function stragglerEvidence(e: EventOf<'straggler'>): string {
  const d = e.data;
  const [from, to] = d.steps;
  return `${d.node ?? d.nodeId} rank ${d.rank}: median step ${d.stepTimeS.toFixed(3)} s over steps ${from}-${to}${d.samples === undefined ? '' : ` (${d.samples} samples)`}, ${d.ratio.toFixed(2)}x the other ranks' median ${d.gangMedianS.toFixed(3)} s (window ${d.windowSteps} steps)`;
}

/** One line per event, as `cube events` and `cube demo` print them. */
export function formatEvent(e: Event): string {
  const where = [
    e.nodeId === undefined ? '' : `node ${e.nodeId}`,
    e.rank === undefined ? '' : `rank ${e.rank}`,
  ]
    .filter((x) => x !== '')
    .join(' ');
  const data =
    e.kind === 'straggler'
      ? stragglerEvidence(e)
      : Object.entries(e.data as Record<string, unknown>)
          .filter(([k]) => k !== 'placement' && k !== 'blame')
          .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join(' ');
  // A fault's blame: one indented line per node, blamed or not, with the evidence.
  const blame = (e.data as { blame?: unknown }).blame;
  const blameLines = Array.isArray(blame)
    ? blame
        .map((b: { node?: unknown; blamed?: unknown; why?: unknown }) =>
          typeof b.node === 'string' && typeof b.why === 'string'
            ? `\n      ${b.node}: ${b.blamed === true ? 'blamed' : 'not blamed'} (${b.why})`
            : '',
        )
        .join('')
    : '';
  return `${e.at.slice(11, 23)}  #${e.id}  ${e.kind}${where === '' ? '' : `  (${where})`}${data === '' ? '' : `  ${data}`}${blameLines}`;
}

interface JobDetail extends Job {
  readonly checkpoints: readonly { step: number; level: string; at: number }[];
  readonly lastProgress: { step: number; loss: number | null; tokensPerS: number | null } | null;
}

/** `cube server | login | submit | jobs | logs | events | nodes | cordon | uncordon | cancel`. */
export function registerControlCommands(program: Command, output: CliOutput): void {
  registerTokenCommands(program, output);
  program
    .command('server')
    .description('run the control plane (HTTP API, SQLite state, scheduler, fault detection)')
    .option('--data-dir <dir>', 'state, logs and default L3 checkpoints', '.cube/server')
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'listen port (0: any free port)', parsePort('--port'), 7600)
    .option(
      '--heartbeat-timeout-s <s>',
      'a node missing heartbeats this long is down',
      parsePositiveNumber('--heartbeat-timeout-s'),
      5,
    )
    .option('--metrics-public', 'serve /metrics without a token (default: a token of any role)')
    .option(
      '--allow-fault-injection',
      'accept POST /nodes/ID/faults from admin tokens (off by default; for demos and tests)',
    )
    .option(
      '--rank-log-max-mib <mib>',
      'cap of one rank log kept by the server (current + one rotated file)',
      parsePositiveNumber('--rank-log-max-mib'),
      64,
    )
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (chain); needs --tls-key')
    .option('--tls-key <file>', 'the PEM private key of --tls-cert')
    .action(
      async (flags: {
        dataDir: string;
        host: string;
        port: number;
        heartbeatTimeoutS: number;
        metricsPublic?: boolean;
        allowFaultInjection?: boolean;
        rankLogMaxMib: number;
        tlsCert?: string;
        tlsKey?: string;
      }) => {
        // Every flag is checked before the data directory or the database is touched.
        const tls = readTlsFlags(flags);
        const cp = await ControlPlane.start({
          dataDir: resolve(flags.dataDir),
          host: flags.host,
          port: flags.port,
          heartbeatTimeoutMs: flags.heartbeatTimeoutS * 1000,
          metricsPublic: flags.metricsPublic === true,
          allowFaultInjection: flags.allowFaultInjection === true,
          rankLogMaxBytes: Math.floor(flags.rankLogMaxMib * 1024 * 1024),
          ...(tls === null ? {} : { tls }),
        });
        // Never the tokens themselves: this line ends up in log files (`cube up`'s server.log).
        output.out(
          JSON.stringify({
            ready: true,
            url: cp.url,
            tokensFile: adminTokensPath(resolve(flags.dataDir)),
          }),
        );
        await new Promise<void>((done) => {
          process.once('SIGTERM', done);
          process.once('SIGINT', done);
        });
        await cp.stop();
      },
    );

  program
    .command('login')
    .description('store the control plane URL and API token for later commands')
    .requiredOption('--server <url>', 'control plane URL')
    .requiredOption('--token <token>', 'API token')
    .option('--json', 'print {server, credentials} (the file they were saved in)')
    .action(async (flags: { server: string; token: string; json?: boolean }) => {
      const server = flags.server.replace(/\/$/, '');
      const api = new ApiClient({ server, token: flags.token });
      await api.request('GET', '/nodes');
      const saved = saveCredentials({ server, token: flags.token });
      if (flags.json === true) printJson(output, { server, credentials: saved });
      else output.out(`logged in to ${flags.server}; credentials saved in ${saved}`);
    });

  withServerFlags(program.command('submit'))
    .description('submit a job spec (YAML or JSON)')
    .argument('<file>', 'job spec')
    .option('--json', 'print the job as JSON')
    .option('--wait', 'wait until the job ends; exit 1 unless it succeeded')
    .action(async (file: string, flags: ServerFlags & { wait?: boolean }) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (cause) {
        throw new CubeError('FILE_NOT_FOUND', `cannot read job spec ${file}`, {
          where: { file },
          cause,
        });
      }
      const spec = parseJobSpec(text, {
        file,
        format: extname(file) === '.json' ? 'json' : 'yaml',
      });
      // The working directory is the submitter's: resolve it here, where it means something.
      const api = client(flags);
      let job = await api.request<Job>('POST', '/jobs', {
        body: { ...spec, workingDir: resolve(spec.workingDir) },
      });
      if (flags.wait === true) {
        const progress = progressFor(output, flags.json);
        if (flags.json !== true)
          progress.print(
            `job ${job.id} submitted (${job.spec.name}, ${job.spec.ranks.nodes} x ${job.spec.ranks.devicesPerNode} ranks)`,
          );
        progress.begin(`job ${job.id} to end`);
        for (;;) {
          const detail = await api.request<JobDetail>('GET', `/jobs/${encodeURIComponent(job.id)}`);
          job = detail;
          if (terminal.includes(job.state)) break;
          progress.update(
            `${job.state}${detail.lastProgress === null ? '' : `, step ${detail.lastProgress.step}`}${job.restarts === 0 ? '' : `, ${job.restarts} restart${job.restarts === 1 ? '' : 's'}`}${job.reason === null ? '' : ` (${job.reason})`}`,
          );
          await sleep(500);
        }
        progress.end(job.state);
      }
      if (flags.json === true) printJson(output, job);
      else if (flags.wait === true)
        output.out(
          `job ${job.id} ${job.state}${job.reason === null ? '' : ` (${job.reason})`} after ${job.restarts} restart${job.restarts === 1 ? '' : 's'}`,
        );
      else
        output.out(
          `job ${job.id} submitted (${job.spec.name}, ${job.spec.ranks.nodes} x ${job.spec.ranks.devicesPerNode} ranks)`,
        );
      if (flags.wait === true && job.state !== 'succeeded')
        throw new CubeError(
          'INFEASIBLE',
          `job ${job.id} ${job.state}${job.reason === null ? '' : `: ${job.reason}`}`,
          { hint: `\`cube events ${job.id}\` and \`cube logs ${job.id}\` say more` },
        );
    });

  const jobs = withServerFlags(program.command('jobs'))
    .description('list jobs')
    .option('--json', 'print as JSON')
    .enablePositionalOptions()
    .action(async (flags: ServerFlags) => {
      const { jobs: list } = await client(flags).request<{ jobs: Job[] }>('GET', '/jobs');
      if (flags.json === true) return printJson(output, list);
      output.out(
        renderTable(
          ['ID', 'NAME', 'STATE', 'RANKS', 'ATTEMPT', 'RESTARTS', 'AGE', 'REASON'],
          list.map((j) => [
            j.id,
            j.spec.name,
            j.state,
            j.spec.ranks.nodes * j.spec.ranks.devicesPerNode,
            j.attempt,
            j.restarts,
            ago(j.createdAt),
            j.reason ?? '',
          ]),
        ),
      );
    });
  withServerFlags(jobs.command('show'))
    .description('one job: state, placement and why, progress, checkpoints')
    .argument('<id>', 'job id')
    .option('--json', 'print as JSON')
    .action(async (id: string, flags: ServerFlags) => {
      const job = await client(flags).request<JobDetail>('GET', `/jobs/${encodeURIComponent(id)}`);
      if (flags.json === true) return printJson(output, job);
      const lines = [
        `job ${job.id} (${job.spec.name}): ${job.state}${job.reason === null ? '' : ` — ${job.reason}`}`,
        `  command   ${job.spec.command.join(' ')}`,
        `  ranks     ${job.spec.ranks.nodes} nodes x ${job.spec.ranks.devicesPerNode} ${job.spec.deviceType} devices; attempt ${job.attempt}, ${job.restarts} restarts (max ${job.spec.restart.maxRestarts})`,
        `  progress  ${job.lastProgress === null ? '-' : `step ${job.lastProgress.step}, loss ${job.lastProgress.loss ?? '-'}`}`,
        '  placement:',
        ...(job.placement ?? []).map(
          (p) => `    rank ${p.rank} -> node ${p.nodeId} (local rank ${p.localRank})`,
        ),
        '  why:',
        ...job.placementExplanation.map((l) => `    ${l}`),
        '  checkpoints (newest per level):',
        ...(['L1', 'L2', 'L3'] as const).map((level) => {
          const c = job.checkpoints.filter((x) => x.level === level).at(-1);
          return `    ${level}: ${c === undefined ? '-' : `step ${c.step}, ${ago(c.at)} ago`}`;
        }),
      ];
      output.out(lines.join('\n'));
    });

  withServerFlags(program.command('logs'))
    .description("a rank's log")
    .argument('<id>', 'job id')
    .option('--rank <r>', 'rank', parseNonNegativeInt('--rank'), 0)
    .option('--attempt <a>', 'attempt (default: the current one)', parseNonNegativeInt('--attempt'))
    .option('--follow', 'keep printing new output until the job ends')
    .option(
      '--json',
      'print {jobId, rank, attempt, offset, text} (with --follow: one such line per chunk)',
    )
    .action(
      async (
        id: string,
        flags: ServerFlags & { rank: number; attempt?: number; follow?: boolean },
      ) => {
        const api = client(flags);
        const path = `/jobs/${encodeURIComponent(id)}`;
        // An unknown job is an error now, not an empty log.
        await api.request<Job>('GET', path);
        const progress = progressFor(output, flags.json);
        if (flags.follow === true) progress.begin(`output of rank ${flags.rank} of job ${id}`);
        let offset = 0;
        let all = '';
        let attempt = flags.attempt ?? null;
        for (;;) {
          const q = `rank=${flags.rank}&offset=${offset}${flags.attempt === undefined ? '' : `&attempt=${flags.attempt}`}`;
          const { text, headers } = await api.requestText('GET', `${path}/logs?${q}`);
          const served = Number(headers.get('x-cube-attempt'));
          if (Number.isInteger(served)) attempt = served;
          if (text !== '') {
            progress.end('first output');
            if (flags.json === true && flags.follow === true)
              output.out(JSON.stringify({ jobId: id, rank: flags.rank, attempt, offset, text }));
            else if (flags.json === true) all += text;
            else output.out(text.replace(/\n$/, ''));
          }
          // The server says where the next read starts (reads are at most 1 MiB; rotated-out
          // bytes are skipped).
          const next = Number(headers.get('x-cube-log-next-offset'));
          const advanced = Number.isSafeInteger(next) ? next : offset + Buffer.byteLength(text);
          const size = Number(headers.get('x-cube-log-size'));
          const more = advanced > offset && Number.isSafeInteger(size) && advanced < size;
          offset = advanced;
          if (more) continue;
          if (flags.follow !== true) break;
          const job = await api.request<Job>('GET', path);
          if (terminal.includes(job.state)) {
            progress.end(`job ${job.state}`);
            break;
          }
          progress.update(job.state);
          await sleep(1000);
        }
        if (flags.json === true && flags.follow !== true)
          printJson(output, { jobId: id, rank: flags.rank, attempt, offset: 0, text: all });
      },
    );

  withServerFlags(program.command('events'))
    .description("a job's event log")
    .argument('<id>', 'job id')
    .option('--json', 'print as JSON')
    .action(async (id: string, flags: ServerFlags) => {
      const { events } = await client(flags).request<{ events: Event[] }>(
        'GET',
        `/jobs/${encodeURIComponent(id)}/events`,
      );
      if (flags.json === true) printJson(output, events);
      else output.out(events.map(formatEvent).join('\n'));
    });

  withServerFlags(program.command('nodes'))
    .description('nodes: state, role, devices, topology labels, last heartbeat')
    .option('--json', 'print as JSON')
    .action(async (flags: ServerFlags) => {
      const { nodes } = await client(flags).request<{ nodes: Node[] }>('GET', '/nodes');
      if (flags.json === true) return printJson(output, nodes);
      output.out(
        renderTable(
          ['ID', 'NAME', 'STATE', 'ROLE', 'DEVICES', 'SERVER', 'SUPER-NODE', 'HEARTBEAT'],
          nodes.map((n) => [
            n.id,
            n.name,
            n.state,
            n.role,
            `${n.devices.length} ${n.devices[0]?.kind ?? ''}`,
            n.labels.server ?? '-',
            n.labels.superNode ?? '-',
            ago(n.lastHeartbeatAt),
          ]),
        ),
      );
    });

  for (const verb of ['cordon', 'uncordon'] as const)
    withServerFlags(program.command(verb))
      .description(
        verb === 'cordon' ? 'keep new work off a node' : 'make a cordoned node schedulable again',
      )
      .argument('<node>', 'node id or name')
      .option('--json', 'print the node as JSON')
      .action(async (node: string, flags: ServerFlags) => {
        const n = await client(flags).request<Node>(
          'POST',
          `/nodes/${encodeURIComponent(node)}/${verb}`,
        );
        if (flags.json === true) printJson(output, n);
        else output.out(`node ${n.name} is ${n.state}`);
      });

  withServerFlags(program.command('cancel'))
    .description('cancel a job')
    .argument('<id>', 'job id')
    .option('--json', 'print the job as JSON')
    .action(async (id: string, flags: ServerFlags) => {
      const job = await client(flags).request<Job>(
        'POST',
        `/jobs/${encodeURIComponent(id)}/cancel`,
      );
      if (flags.json === true) printJson(output, job);
      else output.out(`job ${job.id} is ${job.state}`);
    });
}
