import { readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import type { Command } from 'commander';
import { CubeError } from '../../core/index.ts';
import { ControlPlane } from '../../control/control-plane.ts';
import { parseJobSpec, type Event, type Job, type Node } from '../../control/model/index.ts';
import { ApiClient } from '../api-client.ts';
import { resolveCredentials, saveCredentials } from '../credentials.ts';
import { printJson, renderTable, type CliOutput } from '../output.ts';

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

function ago(ms: number | null): string {
  if (ms === null) return '-';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 90) return `${s}s`;
  if (s < 5400) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

/** One line per event, as `cube events` and `cube demo` print them. */
export function formatEvent(e: Event): string {
  const where = [
    e.nodeId === undefined ? '' : `node ${e.nodeId}`,
    e.rank === undefined ? '' : `rank ${e.rank}`,
  ]
    .filter((x) => x !== '')
    .join(' ');
  const data = Object.entries(e.data as Record<string, unknown>)
    .filter(([k]) => k !== 'placement')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${e.at.slice(11, 23)}  #${e.id}  ${e.kind}${where === '' ? '' : `  (${where})`}${data === '' ? '' : `  ${data}`}`;
}

interface JobDetail extends Job {
  readonly checkpoints: readonly { step: number; level: string; at: number }[];
  readonly lastProgress: { step: number; loss: number | null; tokensPerS: number | null } | null;
}

/** `cube server | login | submit | jobs | logs | events | nodes | cordon | uncordon | cancel`. */
export function registerControlCommands(program: Command, output: CliOutput): void {
  program
    .command('server')
    .description('run the control plane (HTTP API, SQLite state, scheduler, fault detection)')
    .option('--data-dir <dir>', 'state, logs and default L3 checkpoints', '.cube/server')
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'listen port (0: any free port)', (v) => Number(v), 7600)
    .option(
      '--heartbeat-timeout-s <s>',
      'a node missing heartbeats this long is down',
      (v) => Number(v),
      5,
    )
    .action(
      async (flags: { dataDir: string; host: string; port: number; heartbeatTimeoutS: number }) => {
        const cp = await ControlPlane.start({
          dataDir: resolve(flags.dataDir),
          host: flags.host,
          port: flags.port,
          heartbeatTimeoutMs: flags.heartbeatTimeoutS * 1000,
        });
        output.out(
          JSON.stringify({
            ready: true,
            url: cp.url,
            apiToken: cp.tokens.apiToken,
            joinToken: cp.tokens.joinToken,
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
    .action(async (flags: { server: string; token: string }) => {
      const api = new ApiClient({ server: flags.server.replace(/\/$/, ''), token: flags.token });
      await api.request('GET', '/nodes');
      output.out(
        `logged in to ${flags.server}; credentials saved in ${saveCredentials({ server: flags.server.replace(/\/$/, ''), token: flags.token })}`,
      );
    });

  withServerFlags(program.command('submit'))
    .description('submit a job spec (YAML or JSON)')
    .argument('<file>', 'job spec')
    .option('--json', 'print the job as JSON')
    .action(async (file: string, flags: ServerFlags) => {
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
      const job = await client(flags).request<Job>('POST', '/jobs', {
        body: { ...spec, workingDir: resolve(spec.workingDir) },
      });
      if (flags.json === true) printJson(output, job);
      else
        output.out(
          `job ${job.id} submitted (${job.spec.name}, ${job.spec.ranks.nodes} x ${job.spec.ranks.devicesPerNode} ranks)`,
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
    .option('--rank <r>', 'rank', (v) => Number(v), 0)
    .option('--attempt <a>', 'attempt (default: the current one)', (v) => Number(v))
    .option('--follow', 'keep printing new output until the job ends')
    .action(
      async (
        id: string,
        flags: ServerFlags & { rank: number; attempt?: number; follow?: boolean },
      ) => {
        const api = client(flags);
        let offset = 0;
        for (;;) {
          const q = `rank=${flags.rank}&offset=${offset}${flags.attempt === undefined ? '' : `&attempt=${flags.attempt}`}`;
          const text = await api
            .request<string | null>('GET', `/jobs/${encodeURIComponent(id)}/logs?${q}`)
            .catch(() => null);
          if (typeof text === 'string' && text !== '') {
            output.out(text.replace(/\n$/, ''));
            offset += Buffer.byteLength(text);
          }
          if (flags.follow !== true) return;
          const job = await api.request<Job>('GET', `/jobs/${encodeURIComponent(id)}`);
          if (['succeeded', 'failed', 'cancelled'].includes(job.state)) return;
          await new Promise((r) => setTimeout(r, 1000));
        }
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
      .action(async (node: string, flags: ServerFlags) => {
        const n = await client(flags).request<Node>(
          'POST',
          `/nodes/${encodeURIComponent(node)}/${verb}`,
        );
        output.out(`node ${n.name} is ${n.state}`);
      });

  withServerFlags(program.command('cancel'))
    .description('cancel a job')
    .argument('<id>', 'job id')
    .action(async (id: string, flags: ServerFlags) => {
      const job = await client(flags).request<Job>(
        'POST',
        `/jobs/${encodeURIComponent(id)}/cancel`,
      );
      output.out(`job ${job.id} is ${job.state}`);
    });
}
