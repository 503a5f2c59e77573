// In-place recovery, measured (not a test): `npm run bench:recovery [-- --crashes N] [-- --json]`.
//
// A real cluster on this machine (a control plane and four agent processes, `cube up`'s
// defaults: 1 s heartbeats, 250 ms ticks) runs two copies of the GPT example (tiny model, 2
// nodes x 1 rank each), one per restart policy:
//   before  restart {maxRestarts: 1000, backoffSeconds: 1, reset: never}: the backoff doubles
//           with every restart of the job's life (the policy before issue 14);
//           and every attempt starts cold (CUBE_WARM_START=0 in its env);
//   after   restart {maxRestarts: 3, backoffSeconds: 1} (reset: progress, the default): it
//           doubles only for restarts in a row without progress; and the next attempt of each
//           rank runs in a warm interpreter that imported torch while this one trained
//           (src/agent/warm-start.ts).
// Both jobs train at once; the bench SIGKILLs rank 1 of each in turn (an application failure:
// the gang restarts in place), each time after the job committed a checkpoint past the step it
// restored (a month-long run's unrelated faults), and splits each recovery by the event log,
// the agents' logs and the trainer's own wall-clock marks (CUBE_TIMING=1, one
// `cube-timing rank R exec=.. main=.. imports=.. rendezvous=.. restored=.. first_step=..` line):
//   detection   SIGKILL -> fault-detected (the agent pushes the exit at once; the control plane
//               lets an exit settle 1.5 s, in case a node death is behind it)
//   backoff     fault-detected -> job-scheduled of the next attempt (decision + backoff)
//   delivery    -> the launch command reaches the agents (it rides a heartbeat reply)
//   spawn       -> the ranks' processes exist (stopping the old gang, the L3 fence, fork/exec;
//               0 for a warm start, whose process was there before)
//   interpreter -> the script's first line runs (python start-up, site packages; for a warm
//               start the handover of the launch to the waiting interpreter)
//   torch       -> imports done (torch, cube)
//   rendezvous  -> init_process_group returned
//   restore     -> model built and the checkpoint loaded
//   first step  -> the first step after the restore done
// Each part is the slowest rank's (the gang waits for it). Medians over the crashes.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlPlane } from '../../src/control/control-plane.ts';
import { pythonInterpreter } from '../../src/core/index.ts';
import type { Event, Job } from '../../src/control/model/index.ts';
import { validateJobSpec } from '../../src/control/model/index.ts';
import { rankLogPath } from '../../src/control/server/rank-logs.ts';
import {
  startEmbeddedAgents,
  stopEmbeddedAgents,
  type EmbeddedAgent,
} from '../../src/cli/embedded-cluster.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const python = pythonInterpreter();
const args = process.argv.slice(2);
const flag = (name: string): string | undefined =>
  args.includes(name) ? args[args.indexOf(name) + 1] : undefined;
const crashes = Number(flag('--crashes') ?? 5) || 5;
const json = args.includes('--json');
const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

const PARTS = [
  'detection',
  'backoff',
  'delivery',
  'spawn',
  'interpreter',
  'torch',
  'rendezvous',
  'restore',
  'first step',
] as const;
type Part = (typeof PARTS)[number];

interface Recovery {
  readonly config: string;
  readonly attempt: number;
  readonly parts: Record<Part, number>;
  /** fault-detected -> the first step after the restore done, seconds. */
  readonly afterDetection: number;
  /** SIGKILL -> the first step after the restore done, seconds. */
  readonly total: number;
  readonly backoffSeconds: number;
}

const CONFIGS = {
  before: { maxRestarts: 1000, backoffSeconds: 1, reset: 'never' as const },
  after: { maxRestarts: 3, backoffSeconds: 1 },
};
type Config = keyof typeof CONFIGS;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | null>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(50);
  }
}

function ms(at: string): number {
  return Date.parse(at.endsWith('Z') ? at : `${at}Z`);
}

/** The pid of a rank of a job's attempt, from the environment its agent gave it. */
function rankPid(jobId: string, attempt: number, rank: number): number | null {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (
        env.includes(`CUBE_JOB_ID=${jobId}`) &&
        env.includes(`CUBE_ATTEMPT=${attempt}`) &&
        env.includes(`RANK=${rank}`) &&
        // A warm interpreter waiting for the next attempt is not a rank yet.
        readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'cube-warm'
      ) {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z')
          return Number(entry);
      }
    } catch {
      // gone, or not ours
    }
  }
  return null;
}

/** The trainer's `cube-timing` marks of one rank's log (epoch ms), or null. */
function marks(
  dataDir: string,
  jobId: string,
  attempt: number,
  rank: number,
): Record<string, number> | null {
  let text: string;
  try {
    text = readFileSync(rankLogPath(dataDir, jobId, attempt, rank), 'utf8');
  } catch {
    return null;
  }
  const line = text.split('\n').find((l) => l.startsWith(`cube-timing rank ${rank} `));
  if (line === undefined) return null;
  const out: Record<string, number> = {};
  for (const kv of line.split(' ').slice(3)) {
    const [k, v] = kv.split('=');
    if (k !== undefined && v !== undefined) out[k] = Number(v) * 1000;
  }
  return out;
}

/** When each agent logged `launch command received` for this attempt (epoch ms). */
function launchReceived(
  agents: readonly EmbeddedAgent[],
  jobId: string,
  attempt: number,
): number[] {
  const times: number[] = [];
  for (const a of agents) {
    let text: string;
    try {
      text = readFileSync(join(a.dataDir, 'agent.log'), 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line.includes('launch command received') || !line.includes(jobId)) continue;
      try {
        const entry = JSON.parse(line) as { time?: number; jobId?: string; attempt?: number };
        if (entry.jobId === jobId && entry.attempt === attempt && typeof entry.time === 'number')
          times.push(entry.time);
      } catch {
        // not a JSON line
      }
    }
  }
  return times;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length === 0
    ? NaN
    : s.length % 2 === 1
      ? (s[mid] as number)
      : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

async function main(): Promise<void> {
  const check = spawnSync(python, ['-c', 'import torch, numpy, xxhash'], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`${python} cannot import torch, numpy and xxhash`);
  const dataDir = mkdtempSync(join(tmpdir(), 'cube-bench-recovery-'));
  const shmRoot = mkdtempSync(join('/dev/shm', 'cube-bench-recovery-'));
  const cp = await ControlPlane.start({ dataDir });
  const agents = startEmbeddedAgents({
    server: cp.url,
    joinToken: cp.tokens.joinToken,
    dataDir: join(dataDir, 'nodes'),
    shmRoot,
    // The scheduler gives a job whole nodes: two nodes per job, both jobs at once.
    nodes: 4,
    devicesPerNode: 1,
    spares: 0,
  });
  const recoveries: Recovery[] = [];
  try {
    await until('the nodes to join', 60_000, async () =>
      (await cp.store.listNodes()).filter((n) => n.state === 'ready').length >= 4 ? true : null,
    );
    const jobs = new Map<Config, Job>();
    for (const config of Object.keys(CONFIGS) as Config[])
      jobs.set(
        config,
        await cp.store.createJob(
          validateJobSpec({
            name: `recovery-${config}`,
            command: [
              python,
              'examples/gpt/train.py',
              '--steps',
              '1000000',
              ...['--layers', '2', '--hidden', '64', '--heads', '2', '--seq-len', '32'],
              ...['--batch', '4', '--seed', '5'],
            ],
            workingDir: repoRoot,
            env: {
              OMP_NUM_THREADS: '1',
              PYTHONDONTWRITEBYTECODE: '1',
              CUBE_TIMING: '1',
              // The old path starts every attempt cold.
              ...(config === 'before' ? { CUBE_WARM_START: '0' } : {}),
            },
            ranks: { nodes: 2, devicesPerNode: 1 },
            deviceType: 'cpu',
            checkpoint: { everySteps: 5, l3Every: 4 },
            restart: CONFIGS[config],
          }),
        ),
      );
    log(`bench: ${crashes} crashes per policy, interleaved; data in ${dataDir}`);
    for (let i = 0; i < crashes; i++)
      for (const [config, job] of jobs) {
        const r = await crashOnce(cp, agents, dataDir, config, job);
        recoveries.push(r);
        log(
          `  ${config.padEnd(6)} attempt ${r.attempt}: ${PARTS.map((p) => `${p} ${r.parts[p].toFixed(2)}`).join(', ')}; after detection ${r.afterDetection.toFixed(2)} s, total ${r.total.toFixed(2)} s`,
        );
      }
  } finally {
    await stopEmbeddedAgents(agents, shmRoot);
    await cp.stop();
    if (!args.includes('--keep')) rmSync(dataDir, { recursive: true, force: true });
  }
  report(recoveries);
}

/** Waits for progress past the restore point, SIGKILLs rank 1, and measures the recovery. */
async function crashOnce(
  cp: ControlPlane,
  agents: readonly EmbeddedAgent[],
  dataDir: string,
  config: Config,
  job: Job,
): Promise<Recovery> {
  const events = (): Promise<Event[]> => cp.store.listEvents({ jobId: job.id });
  const running = await until(`${config} to train past its restore point`, 300_000, async () => {
    const j = await cp.store.getJob(job.id);
    if (j === null) return null;
    if (j.state === 'failed' || j.state === 'cancelled')
      throw new Error(`bench: job ${config} ${j.state}: ${j.reason ?? ''}`);
    if (j.state !== 'running') return null;
    const all = await events();
    const restored = Math.max(
      -1,
      ...all.map((e) => (e.kind === 'job-restored' && e.attempt === j.attempt ? e.data.step : -1)),
    );
    const resumedId =
      all.find((e) => e.kind === 'job-running' && e.attempt === j.attempt)?.id ?? Infinity;
    const progressed = all.some(
      (e) => e.kind === 'checkpoint-committed' && e.id > resumedId && e.data.step > restored,
    );
    return progressed && rankPid(job.id, j.attempt, 1) !== null ? j : null;
  });
  const attempt = running.attempt + 1;
  const pid = rankPid(job.id, running.attempt, 1) as number;
  const crashMs = Date.now();
  process.kill(pid, 'SIGKILL');
  const final = await until(`${config} attempt ${attempt} to train again`, 180_000, async () => {
    const j = await cp.store.getJob(job.id);
    if (j === null) return null;
    if (j.state === 'failed' || j.state === 'cancelled')
      throw new Error(`bench: job ${config} ${j.state}: ${j.reason ?? ''}`);
    const m0 = marks(dataDir, job.id, attempt, 0);
    const m1 = marks(dataDir, job.id, attempt, 1);
    return j.attempt === attempt && m0 !== null && m1 !== null ? { m0, m1 } : null;
  });
  const all = await events();
  const fault = all.find((e) => e.kind === 'fault-detected' && e.attempt === running.attempt);
  const restarting = all.find((e) => e.kind === 'job-restarting' && e.attempt === running.attempt);
  const scheduled = all.find((e) => e.kind === 'job-scheduled' && e.attempt === attempt);
  const received = launchReceived(agents, job.id, attempt);
  if (fault === undefined || scheduled === undefined || received.length === 0)
    throw new Error(`bench: ${config} attempt ${attempt}: missing events or agent logs`);
  const slowest = (key: string): number => Math.max(final.m0[key] ?? NaN, final.m1[key] ?? NaN);
  const t = {
    crash: crashMs,
    fault: ms(fault.at),
    scheduled: ms(scheduled.at),
    received: Math.max(...received),
    exec: slowest('exec'),
    main: slowest('main'),
    imports: slowest('imports'),
    rendezvous: slowest('rendezvous'),
    restored: slowest('restored'),
    firstStep: slowest('first_step'),
  };
  const s = (a: number, b: number): number => (b - a) / 1000;
  return {
    config,
    attempt,
    parts: {
      detection: s(t.crash, t.fault),
      backoff: s(t.fault, t.scheduled),
      delivery: s(t.scheduled, t.received),
      // A warm start's interpreter was up before the launch came: its spawn is nothing, and
      // its interpreter part is the handover (launch received -> the script's first line).
      spawn: s(t.received, Math.max(t.exec, t.received)),
      interpreter: s(Math.max(t.exec, t.received), t.main),
      torch: s(t.main, t.imports),
      rendezvous: s(t.imports, t.rendezvous),
      restore: s(t.rendezvous, t.restored),
      'first step': s(t.restored, t.firstStep),
    },
    afterDetection: s(t.fault, t.firstStep),
    total: s(t.crash, t.firstStep),
    backoffSeconds:
      (restarting?.data as { backoffSeconds?: number } | undefined)?.backoffSeconds ?? NaN,
  };
}

function report(recoveries: readonly Recovery[]): void {
  const configs = [...new Set(recoveries.map((r) => r.config))];
  const rows = configs.map((config) => {
    const rs = recoveries.filter((r) => r.config === config);
    return {
      config,
      crashes: rs.length,
      backoffSeconds: rs.map((r) => r.backoffSeconds),
      median: Object.fromEntries(PARTS.map((p) => [p, median(rs.map((r) => r.parts[p]))])),
      afterDetection: median(rs.map((r) => r.afterDetection)),
      total: median(rs.map((r) => r.total)),
    };
  });
  if (json) {
    process.stdout.write(`${JSON.stringify({ rows, recoveries }, null, 2)}\n`);
    return;
  }
  const header = ['part (median s)', ...configs];
  const lines = [
    ...PARTS.map((p) => [p, ...rows.map((r) => (r.median[p] ?? NaN).toFixed(2))]),
    ['crash detected -> training', ...rows.map((r) => r.afterDetection.toFixed(2))],
    ['crash -> training', ...rows.map((r) => r.total.toFixed(2))],
    ['backoffs (s)', ...rows.map((r) => r.backoffSeconds.join(','))],
  ];
  const widths = header.map((_, i) =>
    Math.max(...[header, ...lines].map((l) => (l[i] ?? '').length)),
  );
  const fmt = (l: readonly string[]): string =>
    `| ${l.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  process.stdout.write(
    [
      fmt(header),
      `| ${widths.map((w, i) => (i === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`,
      ...lines.map(fmt),
    ].join('\n') + '\n',
  );
}

await main();
