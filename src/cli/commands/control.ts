import { readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import type { Command } from 'commander';
import { CubeError, nearestNames } from '../../core/index.ts';
import {
  eventKinds,
  JobStateSchema,
  NodeStateSchema,
  parseJobSpec,
  type Event,
  type EventOf,
  type Job,
  type Node,
} from '../../control/model/index.ts';
import { ApiClient, type JobDetail } from '../api-client.ts';
import { checkRank, jobExitCode, JobEndedError, resolveJob, worldSize } from '../job-ref.ts';
import {
  outputFormatOf,
  printShown,
  printUnlessEmpty,
  renderListing,
  serialize,
  withOutputFlags,
  type Listing,
  type OutputFlags,
  type OutputFormat,
} from '../output-format.ts';
import { watch } from '../watch.ts';
import { resolveCredentials, saveCredentials } from '../credentials.ts';
import { printJson, processOutput, type CliOutput } from '../output.ts';
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

interface ListFlags extends ServerFlags, OutputFlags {
  watch?: boolean;
}

/** True when the command writes to a terminal (redraw in place) rather than a pipe. */
function stdoutIsTty(output: CliOutput): boolean {
  return output === processOutput && process.stdout.isTTY;
}

/**
 * A comma-separated filter flag (`--state running,failed`) checked against the values that
 * exist, so a typo is an error naming the nearest value instead of an empty list.
 */
function parseStates(
  flag: string,
  allowed: readonly string[],
): (value: string) => readonly string[] {
  return (value) => {
    const values = value
      .split(',')
      .map((v) => v.trim())
      .filter((v) => v !== '');
    if (values.length === 0)
      throw new CubeError('BAD_FLAG', `${flag} needs at least one value`, {
        where: { field: flag, allowed },
      });
    for (const v of values)
      if (!allowed.includes(v)) {
        const near = nearestNames(v, allowed);
        throw new CubeError('BAD_FLAG', `${flag}: "${v}" is not one of ${allowed.join(', ')}`, {
          where: { field: flag, allowed },
          ...(near.length === 0 ? {} : { hint: `did you mean "${near[0]}"?` }),
        });
      }
    return values;
  };
}

/**
 * One frame of `--watch`: machine formats print one document per change (`json` one line,
 * `yaml` a `---` document) so a reader can split them; tables print as they are.
 */
function renderWatched<T>(format: OutputFormat, items: readonly T[], listing: Listing<T>): string {
  if (format === 'json') return JSON.stringify(items);
  if (format === 'yaml') return `---\n${serialize('yaml', items)}`;
  return renderListing(format, items, listing);
}

/** Between two tables printed by `--watch` into a pipe: a blank line. */
function tableSeparator(format: OutputFormat): { separator?: string } {
  return format === 'table' || format === 'wide' ? { separator: '' } : {};
}

function isoTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(bytes >= 10 * 2 ** 30 ? 0 : 1)} GiB`;
}

/** The node's failing probes and devices, or `-`. */
function unhealthy(n: Node): string {
  const probes = (n.health?.probes ?? []).filter((p) => !p.ok).map((p) => p.name);
  const devices = n.devices
    .filter((d) => d.health !== 'ok')
    .map((d) => `dev${d.index}:${d.health}`);
  const all = [...probes, ...devices];
  return all.length === 0 ? '-' : all.join(',');
}

/** `cube jobs show` in words; `wide` adds times, owner, priority and the policies. */
function jobText(job: JobDetail, wide: boolean): string {
  return [
    `job ${job.id} (${job.spec.name}): ${job.state}${job.reason === null ? '' : ` — ${job.reason}`}`,
    `  command   ${job.spec.command.join(' ')}`,
    `  ranks     ${job.spec.ranks.nodes} nodes x ${job.spec.ranks.devicesPerNode} ${job.spec.deviceType} devices; attempt ${job.attempt}, ${job.restarts} restarts (max ${job.spec.restart.maxRestarts})`,
    `  progress  ${job.lastProgress === null ? '-' : `step ${job.lastProgress.step}, loss ${job.lastProgress.loss ?? '-'}`}`,
    ...(wide
      ? [
          `  created   ${isoTime(job.createdAt)}; started ${job.startedAt === null ? '-' : isoTime(job.startedAt)}; ended ${job.endedAt === null ? '-' : isoTime(job.endedAt)}`,
          `  owner     ${job.owner ?? '-'}; priority ${job.spec.priority}`,
          `  tokens/s  ${job.lastProgress?.tokensPerS ?? '-'}`,
          `  policies  checkpoint ${JSON.stringify(job.spec.checkpoint ?? null)}; restart ${JSON.stringify(job.spec.restart)}`,
        ]
      : []),
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
  ].join('\n');
}

/**
 * The last `lines` lines of a rank log, as `tail -n` prints them: read backwards from the end
 * in 64 KiB ranges (as bytes, so a character split across two ranges is joined whole) until
 * enough newlines are in hand or the log's first kept byte is reached.
 */
async function tailOf(
  api: ApiClient,
  query: (offset: number, limit?: number) => string,
  lines: number,
): Promise<{ text: string; start: number; end: number; attempt: number | null }> {
  const probe = await api.requestBytes('GET', query(0, 1));
  const header = (name: string): number | null => {
    const n = Number(probe.headers.get(name));
    return probe.headers.get(name) !== null && Number.isSafeInteger(n) ? n : null;
  };
  const size = header('x-cube-log-size') ?? 0;
  const first = header('x-cube-log-start') ?? 0;
  const attempt = header('x-cube-attempt');
  const chunk = 64 * 1024;
  let from = size;
  let bytes = Buffer.alloc(0);
  const newlines = (b: Buffer): number => b.reduce((n, c) => (c === 10 ? n + 1 : n), 0);
  while (lines > 0 && from > first) {
    const at = Math.max(first, from - chunk);
    const range = await api.requestBytes('GET', query(at, from - at));
    bytes = Buffer.concat([range.bytes, bytes]);
    from = at;
    if (newlines(bytes) > lines) break;
  }
  let keepFrom = lines === 0 ? bytes.length : 0;
  let seen = 0;
  for (let i = bytes.length - (bytes.at(-1) === 10 ? 2 : 1); i >= 0 && lines > 0; i--)
    if (bytes[i] === 10 && ++seen === lines) {
      keepFrom = i + 1;
      break;
    }
  return {
    text: bytes.subarray(keepFrom).toString('utf8'),
    start: from + keepFrom,
    end: size,
    attempt,
  };
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
        // Loaded here, not with the module: the server's HTTP stack, SQLite and Kysely cost every
        // other command of this module (nodes, jobs, logs, ...) most of its start-up (bench/cli).
        const { adminTokensPath, ControlPlane } = await import('../../control/control-plane.ts');
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
    .option(
      '--wait',
      "wait until the job ends and exit with its code, as srun does: 0 on success, the first failing rank's exit code (1 when unknown), 130 when cancelled",
    )
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ cube submit job.yaml                    # queue it; prints the job id',
        "  $ cube submit job.yaml --wait             # wait; exit with the job's exit code",
        '  $ cube submit job.yaml --wait && cube logs gpt-small --tail 20',
        '  $ cube submit job.yaml --json | jq -r .id',
      ].join('\n'),
    )
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
      if (flags.wait === true && job.state !== 'succeeded') {
        // The rank exits are in the job's event log (`rank-exited`, with the exit code).
        const { events } = await api.request<{ events: Event[] }>(
          'GET',
          `/jobs/${encodeURIComponent(job.id)}/events`,
        );
        const code = jobExitCode(job, events);
        throw new JobEndedError(
          `job ${job.id} ${job.state}${job.reason === null ? '' : `: ${job.reason}`} (exit code ${code})`,
          code,
          { hint: `\`cube events ${job.id}\` and \`cube logs ${job.id}\` say more` },
        );
      }
    });

  const jobListing: Listing<Job> = {
    headers: ['ID', 'NAME', 'STATE', 'RANKS', 'ATTEMPT', 'RESTARTS', 'AGE', 'REASON'],
    row: (j) => [
      j.id,
      j.spec.name,
      j.state,
      worldSize(j),
      j.attempt,
      j.restarts,
      ago(j.createdAt),
      j.reason ?? '',
    ],
    wideHeaders: ['DEVICE', 'PRIORITY', 'NODES', 'STARTED', 'ENDED', 'OWNER'],
    wideRow: (j) => [
      j.spec.deviceType,
      j.spec.priority,
      j.placement === null ? '-' : [...new Set(j.placement.map((p) => p.nodeId))].join(','),
      j.startedAt === null ? '-' : isoTime(j.startedAt),
      j.endedAt === null ? '-' : isoTime(j.endedAt),
      j.owner ?? '-',
    ],
    name: (j) => j.id,
  };

  const jobs = withOutputFlags(withServerFlags(program.command('jobs')))
    .description('list jobs')
    .option(
      '--state <states>',
      `only jobs in these states, comma-separated: ${JobStateSchema.options.join(', ')}`,
      parseStates('--state', JobStateSchema.options),
    )
    .option('-w, --watch', 'keep watching: redraw on a change until Ctrl-C')
    .enablePositionalOptions()
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ cube jobs --state running,recovering',
        '  $ cube jobs -o wide --watch',
        '  $ cube jobs --state failed -o name | xargs -n1 cube events --type fault-detected',
      ].join('\n'),
    )
    .action(async (flags: ListFlags & { state?: readonly string[] }) => {
      const format = outputFormatOf(flags);
      const api = client(flags);
      const fetchJobs = async (signal?: AbortSignal): Promise<Job[]> => {
        const { jobs: list } = await api.request<{ jobs: Job[] }>(
          'GET',
          '/jobs',
          signal === undefined ? {} : { signal },
        );
        return flags.state === undefined
          ? list
          : list.filter((j) => flags.state?.includes(j.state));
      };
      if (flags.watch === true)
        return watch({
          output,
          isTty: stdoutIsTty(output),
          fetch: fetchJobs,
          key: (list) => JSON.stringify(list.map((j) => [j.id, j.state, j.attempt, j.reason])),
          render: (list) => renderWatched(format, list, jobListing),
          ...tableSeparator(format),
        });
      printUnlessEmpty(output, renderListing(format, await fetchJobs(), jobListing));
    });

  withOutputFlags(withServerFlags(jobs.command('show')))
    .description('one job: state, placement and why, progress, checkpoints')
    .argument('<job>', 'job id or name (the newest job of that name)')
    .option('-w, --watch', 'keep watching: redraw on a change until the job ends or Ctrl-C')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ cube jobs show gpt-small',
        '  $ cube jobs show j-k3v9q2xa -o yaml --watch',
      ].join('\n'),
    )
    .action(async (ref: string, flags: ListFlags) => {
      const format = outputFormatOf(flags);
      const api = client(flags);
      const { id } = await resolveJob(api, ref);
      const fetchJob = (signal?: AbortSignal): Promise<JobDetail> =>
        api.request<JobDetail>(
          'GET',
          `/jobs/${encodeURIComponent(id)}`,
          signal === undefined ? {} : { signal },
        );
      const text = (job: JobDetail, wide: boolean): string => jobText(job, wide);
      if (flags.watch === true)
        return watch({
          output,
          isTty: stdoutIsTty(output),
          fetch: fetchJob,
          key: (j) =>
            JSON.stringify([
              j.state,
              j.attempt,
              j.reason,
              j.placement,
              j.lastProgress?.step,
              j.checkpoints.length,
            ]),
          render: (j) =>
            format === 'json'
              ? JSON.stringify(j)
              : format === 'yaml'
                ? `---\n${serialize('yaml', j)}`
                : format === 'name'
                  ? j.id
                  : text(j, format === 'wide'),
          done: (j) => terminal.includes(j.state),
          ...tableSeparator(format),
        });
      const job = await fetchJob();
      printShown(output, format, { value: job, name: job.id, text: (wide) => text(job, wide) });
    });

  withServerFlags(program.command('logs'))
    .description("a rank's log")
    .argument('<job>', 'job id or name (the newest job of that name)')
    .option('--rank <r>', 'rank', parseNonNegativeInt('--rank'), 0)
    .option('--attempt <a>', 'attempt (default: the current one)', parseNonNegativeInt('--attempt'))
    .option(
      '--tail <n>',
      'only the last n lines (as tail -n); with --follow, then what comes',
      parseNonNegativeInt('--tail'),
    )
    .option('-f, --follow', 'keep printing new output until the job ends')
    .option(
      '--json',
      'print {jobId, rank, attempt, offset, text} (with --follow: one such line per chunk)',
    )
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ cube logs gpt-small --tail 20 --follow',
        '  $ cube logs j-k3v9q2xa --rank 1 --attempt 0',
      ].join('\n'),
    )
    .action(
      async (
        ref: string,
        flags: ServerFlags & { rank: number; attempt?: number; tail?: number; follow?: boolean },
      ) => {
        const api = client(flags);
        // An unknown job is an error now, not an empty log; so is a rank the job does not have.
        const found = await resolveJob(api, ref);
        checkRank(found, flags.rank);
        const id = found.id;
        const path = `/jobs/${encodeURIComponent(id)}`;
        const progress = progressFor(output, flags.json);
        if (flags.follow === true) progress.begin(`output of rank ${flags.rank} of job ${id}`);
        const query = (offset: number, limit?: number): string =>
          `${path}/logs?rank=${flags.rank}&offset=${offset}${limit === undefined ? '' : `&limit=${limit}`}${flags.attempt === undefined ? '' : `&attempt=${flags.attempt}`}`;
        let offset = 0;
        let all = '';
        let attempt = flags.attempt ?? null;
        let tailText: string | null = null;
        if (flags.tail !== undefined) {
          const tail = await tailOf(api, query, flags.tail);
          attempt = tail.attempt ?? attempt;
          offset = tail.end;
          tailText = tail.text;
          if (tail.text !== '') {
            progress.end('first output');
            if (flags.json === true && flags.follow === true)
              output.out(
                JSON.stringify({
                  jobId: id,
                  rank: flags.rank,
                  attempt,
                  offset: tail.start,
                  text: tail.text,
                }),
              );
            else if (flags.json !== true) output.out(tail.text.replace(/\n$/, ''));
          }
        }
        const firstOffset = offset;
        for (;;) {
          if (tailText !== null && flags.follow !== true) break;
          const { text, headers } = await api.requestText('GET', query(offset));
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
          printJson(
            output,
            tailText === null
              ? { jobId: id, rank: flags.rank, attempt, offset: 0, text: all }
              : {
                  jobId: id,
                  rank: flags.rank,
                  attempt,
                  offset: firstOffset - Buffer.byteLength(tailText),
                  text: tailText,
                },
          );
      },
    );

  const eventListing: Listing<Event> = {
    headers: [],
    row: () => [],
    wideHeaders: [],
    wideRow: () => [],
    name: (e) => String(e.id),
  };
  withOutputFlags(withServerFlags(program.command('events')))
    .description("a job's event log, or the cluster's without a job")
    .argument('[job]', 'job id or name (the newest job of that name)')
    .option(
      '--type <kinds>',
      'only events of these kinds, comma-separated (e.g. fault-detected,node-down)',
      parseStates('--type', eventKinds),
    )
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ cube events gpt-small --type fault-detected,job-restarting',
        '  $ cube events --type node-down -o yaml',
      ].join('\n'),
    )
    .action(async (ref: string | undefined, flags: ListFlags & { type?: readonly string[] }) => {
      const format = outputFormatOf(flags);
      const api = client(flags);
      let all: Event[];
      if (ref !== undefined)
        ({ events: all } = await api.request<{ events: Event[] }>(
          'GET',
          `/jobs/${encodeURIComponent((await resolveJob(api, ref)).id)}/events`,
        ));
      else {
        // The cluster's log comes in pages of at most 10,000, oldest first: read them all (to
        // an empty page: a `user` token's pages are filtered after the limit, so a short page
        // does not mean the last).
        all = [];
        for (;;) {
          const after = all.at(-1)?.id;
          const { events: page } = await api.request<{ events: Event[] }>(
            'GET',
            `/events?limit=10000${after === undefined ? '' : `&after=${after}`}`,
          );
          all.push(...page);
          if (page.length === 0) break;
        }
      }
      const events =
        flags.type === undefined ? all : all.filter((e) => flags.type?.includes(e.kind));
      if (format === 'table' || format === 'wide')
        printUnlessEmpty(output, events.map(formatEvent).join('\n'));
      else printUnlessEmpty(output, renderListing(format, events, eventListing));
    });

  const nodeListing: Listing<Node> = {
    headers: ['ID', 'NAME', 'STATE', 'ROLE', 'DEVICES', 'SERVER', 'SUPER-NODE', 'HEARTBEAT'],
    row: (n) => [
      n.id,
      n.name,
      n.state,
      n.role,
      `${n.devices.length} ${n.devices[0]?.kind ?? ''}`,
      n.labels.server ?? '-',
      n.labels.superNode ?? '-',
      ago(n.lastHeartbeatAt),
    ],
    wideHeaders: ['MODEL', 'DEVICE-MEM', 'HOST-MEM', 'HOST', 'PEER-PORT', 'UNHEALTHY', 'JOINED'],
    wideRow: (n) => [
      n.devices[0]?.model ?? '-',
      n.devices[0] === undefined ? '-' : gib(n.devices[0].memoryBytes),
      gib(n.hostMemoryBytes),
      n.host ?? '-',
      n.ckptPeerPort ?? '-',
      unhealthy(n),
      isoTime(n.joinedAt),
    ],
    name: (n) => n.name,
  };

  withOutputFlags(withServerFlags(program.command('nodes')))
    .description('nodes: state, role, devices, topology labels, last heartbeat')
    .option(
      '--state <states>',
      `only nodes in these states, comma-separated: ${NodeStateSchema.options.join(', ')}`,
      parseStates('--state', NodeStateSchema.options),
    )
    .option('-w, --watch', 'keep watching: redraw on a change until Ctrl-C')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ cube nodes --state down,cordoned',
        '  $ cube nodes -o wide --watch',
        '  $ cube nodes --state cordoned -o name | xargs -n1 cube uncordon',
      ].join('\n'),
    )
    .action(async (flags: ListFlags & { state?: readonly string[] }) => {
      const format = outputFormatOf(flags);
      const api = client(flags);
      const fetchNodes = async (signal?: AbortSignal): Promise<Node[]> => {
        const { nodes } = await api.request<{ nodes: Node[] }>(
          'GET',
          '/nodes',
          signal === undefined ? {} : { signal },
        );
        return flags.state === undefined
          ? nodes
          : nodes.filter((n) => flags.state?.includes(n.state));
      };
      if (flags.watch === true)
        return watch({
          output,
          isTty: stdoutIsTty(output),
          fetch: fetchNodes,
          // Heartbeat times move every second: a change is a node's state, role or devices.
          key: (list) =>
            JSON.stringify(list.map((n) => [n.id, n.state, n.role, n.devices, unhealthy(n)])),
          render: (list) => renderWatched(format, list, nodeListing),
          ...tableSeparator(format),
        });
      printUnlessEmpty(output, renderListing(format, await fetchNodes(), nodeListing));
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
    .argument('<job>', 'job id or name (the newest job of that name)')
    .option('--json', 'print the job as JSON')
    .action(async (ref: string, flags: ServerFlags) => {
      const api = client(flags);
      const { id } = await resolveJob(api, ref);
      const job = await api.request<Job>('POST', `/jobs/${encodeURIComponent(id)}/cancel`);
      if (flags.json === true) printJson(output, job);
      else output.out(`job ${job.id} is ${job.state}`);
    });
}
