import {
  chmodSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  closeSync,
  rmSync,
  writeSync,
  fstatSync,
  readdirSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { CubeError } from '../../core/index.ts';
import { verifyStep, stepDirName } from '../../ckpt/index.ts';
import type { Event, Job, JobSpecInput, Node } from '../../control/model/index.ts';
import { rankLogPath } from '../../control/server/rank-logs.ts';
import { ApiClient } from '../api-client.ts';
import { lossesByStep } from '../replay-check.ts';
import {
  agentAlive,
  relaunchAgent,
  startChaosCluster,
  stopChaosCluster,
  type ChaosNode,
} from './cluster.ts';
import type { FaultKind } from './fault-kinds.ts';
import { measureFault, type Injection } from './measure.ts';
import {
  campaignViolations,
  compareLosses,
  summarizeByKind,
  type ChaosReport,
  type CheckpointCheck,
} from './report.ts';
import { findRankProcesses, rankProcesses, signal } from './rank-processes.ts';
import { planCampaign, type PlannedFault } from './schedule.ts';
import { ServerProcess } from './server-process.ts';
import { spread } from './stats.ts';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * Timings a campaign uses. The heartbeat timeout is the server's default (and `cube up`'s): a
 * shorter one turns every control-plane restart into a fault of every node, since agents back
 * off their retries up to 5 s while it is down. The hang timeout must outlast a launch (torch
 * start-up and the restore take several seconds on a loaded machine), which it also covers.
 */
const heartbeatTimeoutSeconds = 5;
const heartbeatMs = 500;
const hangTimeoutSeconds = 20;
const recoveryWaitMs = 180_000;
const l3Keep = 3;

export interface CampaignOptions {
  readonly seed: number;
  readonly durationSeconds: number;
  readonly nodes: number;
  readonly spares: number;
  readonly kinds: readonly FaultKind[];
  readonly meanIntervalSeconds: number;
  readonly steps: number;
  readonly reference: boolean;
  readonly keep: boolean;
  readonly python: string;
  /** Progress lines for a person (not printed with --json). */
  readonly say: (line: string) => void;
  readonly signal: AbortSignal;
}

function sleep(ms: number, abort: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (abort.aborted) return resolve();
    const timer = setTimeout(done, Math.max(0, ms));
    function done(): void {
      clearTimeout(timer);
      abort.removeEventListener('abort', done);
      resolve();
    }
    abort.addEventListener('abort', done, { once: true });
  });
}

function checkAborted(abort: AbortSignal): void {
  if (abort.aborted)
    throw new CubeError('INFEASIBLE', 'chaos: interrupted; everything it started was stopped');
}

/** The job a campaign trains: the demo's tiny GPT, DDP over gloo, one rank per node. */
export function chaosJobSpec(
  name: string,
  options: Pick<CampaignOptions, 'nodes' | 'steps' | 'python'>,
): JobSpecInput {
  return {
    name,
    command: [
      options.python,
      'examples/gpt/train.py',
      '--steps',
      String(options.steps),
      '--layers',
      '2',
      '--hidden',
      '64',
      '--heads',
      '2',
      '--seq-len',
      '32',
      '--batch',
      '4',
      '--seed',
      '5',
    ],
    workingDir: repoRoot,
    env: { OMP_NUM_THREADS: '1', PYTHONDONTWRITEBYTECODE: '1' },
    ranks: { nodes: options.nodes, devicesPerNode: 1 },
    deviceType: 'cpu',
    checkpoint: { everySteps: 10, l3Every: 3, keep: { L1: 2, L2: 2, L3: l3Keep } },
    // Every fault may cost a restart: a long campaign must not be cut short by the cap.
    restart: { maxRestarts: 10_000, backoffSeconds: 0.5 },
    faults: {
      heartbeatTimeoutSeconds,
      hangTimeoutSeconds,
      straggler: { slowdown: 1.5, windowSteps: 10, action: 'report' },
    },
  };
}

/** The running state of a campaign: the cluster, the API, the job's events so far. */
class Campaign {
  readonly o: CampaignOptions;
  readonly dir: string;
  readonly shmRoot: string;
  readonly server: ServerProcess;
  nodes: ChaosNode[] = [];
  api!: ApiClient;
  jobId = '';
  readonly events: Event[] = [];
  l3Root: string | null = null;

  constructor(o: CampaignOptions) {
    this.o = o;
    this.dir = mkdtempSync(join(tmpdir(), 'cube-chaos-'));
    chmodSync(this.dir, 0o700);
    this.shmRoot = mkdtempSync(join('/dev/shm', 'cube-chaos-'));
    chmodSync(this.shmRoot, 0o700);
    this.server = new ServerProcess({
      dataDir: join(this.dir, 'server'),
      heartbeatTimeoutSeconds,
      logFile: join(this.dir, 'server.log'),
    });
  }

  get clusterOptions() {
    return {
      dataDir: join(this.dir, 'nodes'),
      shmRoot: this.shmRoot,
      nodes: this.o.nodes,
      spares: this.o.spares,
      heartbeatMs,
    };
  }

  /** An API call that waits out a control plane being restarted. */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        return await this.api.request<T>(method, path, body === undefined ? {} : { body });
      } catch (error) {
        const down =
          error instanceof Error &&
          /fetch failed|ECONNREFUSED|ECONNRESET|socket/i.test(
            `${error.message} ${String(error.cause)}`,
          );
        if (!down || Date.now() > deadline) throw error;
        await sleep(250, this.o.signal);
        checkAborted(this.o.signal);
      }
    }
  }

  async refreshEvents(): Promise<void> {
    const after = this.events.at(-1)?.id ?? 0;
    const { events } = await this.call<{ events: Event[] }>(
      'GET',
      `/jobs/${this.jobId}/events?after=${after}`,
    );
    this.events.push(...events);
  }

  async job(id = this.jobId): Promise<Job> {
    return this.call<Job>('GET', `/jobs/${id}`);
  }

  async listNodes(): Promise<Node[]> {
    return (await this.call<{ nodes: Node[] }>('GET', '/nodes')).nodes;
  }

  /**
   * A rank's log as its node wrote it (`nodes/<node>/logs/<job>/<attempt>/rank-R.log`), else
   * the control plane's copy. The node's copy first: the server's only grows while agents can
   * forward to it, so after a control-plane kill it would time the forwarding, not training.
   */
  rankLog(jobId: string, attempt: number, rank: number): string {
    const copies: string[] = [];
    let nodes: string[];
    try {
      nodes = readdirSync(join(this.dir, 'nodes'));
    } catch {
      nodes = [];
    }
    for (const node of nodes)
      copies.push(
        join(this.dir, 'nodes', node, 'logs', jobId, String(attempt), `rank-${rank}.log`),
      );
    copies.push(rankLogPath(join(this.dir, 'server'), jobId, attempt, rank));
    let longest = '';
    for (const path of copies) {
      try {
        const text = readFileSync(path, 'utf8');
        if (text.length > longest.length) longest = text;
      } catch {
        // not on this node
      }
    }
    return longest;
  }

  /** The newest step rank 0 logged in this attempt, or -1. */
  lastStep(jobId: string, attempt: number): number {
    return Math.max(-1, ...lossesByStep(this.rankLog(jobId, attempt, 0)).keys());
  }

  async waitFor<T>(
    what: string,
    timeoutMs: number,
    probe: () => Promise<T | null>,
  ): Promise<T | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      checkAborted(this.o.signal);
      const value = await probe();
      if (value !== null) return value;
      if (Date.now() > deadline) {
        this.o.say(`  timed out waiting for ${what}`);
        return null;
      }
      await sleep(250, this.o.signal);
    }
  }

  async waitForNodes(): Promise<void> {
    const names = this.nodes.map((n) => n.agent.name);
    const ok = await this.waitFor('the nodes to join', 120_000, async () => {
      const ready = (await this.listNodes()).filter(
        (n) => n.state === 'ready' && names.includes(n.name),
      );
      return ready.length === names.length ? true : null;
    });
    if (ok === null)
      throw new CubeError(
        'INFEASIBLE',
        `chaos: the agents did not join; see ${join(this.dir, 'nodes')}`,
      );
  }

  /** Brings every node back into service: relaunches dead agents and uncordons cordoned nodes. */
  async repair(): Promise<string[]> {
    const repaired: string[] = [];
    for (const node of this.nodes)
      if (!agentAlive(node)) {
        // The hardware repair of a real cluster: the node comes back after a while.
        await sleep(1000, this.o.signal);
        relaunchAgent(node, this.server, this.clusterOptions);
        repaired.push(`${node.agent.name} (agent relaunched)`);
      }
    await this.waitFor('repaired nodes to rejoin', 60_000, async () => {
      const nodes = await this.listNodes();
      return this.nodes.every((n) =>
        nodes.some((x) => x.name === n.agent.name && x.state !== 'down'),
      )
        ? true
        : null;
    });
    for (const n of await this.listNodes())
      if (n.state === 'cordoned') {
        await this.call('POST', `/nodes/${n.id}/uncordon`);
        repaired.push(`${n.name} (uncordoned)`);
      }
    return repaired;
  }
}

/**
 * The file of the newest committed L1 shard of `rank`: the newest step directory with a
 * manifest, and the file its entry for the rank names (L1 shards live in reused slots,
 * `slots/rank-R/slot-N.safetensors`, named by the manifest), or null.
 */
function newestCommittedShard(
  l1Root: string,
  jobId: string,
  rank: number,
): { file: string; step: number } | null {
  const jobDir = join(l1Root, jobId);
  if (!existsSync(jobDir)) return null;
  const steps = readdirSync(jobDir)
    .map((d) => /^step-(\d{10})$/.exec(d))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a);
  for (const step of steps) {
    try {
      const manifest = manifestFileSchema.parse(
        JSON.parse(readFileSync(join(jobDir, stepDirName(step), 'manifest.json'), 'utf8')),
      );
      const entry = manifest.shards.find((sh) => sh.rank === rank);
      if (entry === undefined || entry.file.split('/').some((part) => part === '..')) continue;
      const file = join(jobDir, ...entry.file.split('/'));
      if (existsSync(file)) return { file, step };
    } catch {
      // No manifest (a save in progress) or one being replaced: an older step will do.
    }
  }
  return null;
}

const manifestFileSchema = z.object({
  shards: z.array(z.looseObject({ rank: z.int(), file: z.string() })),
});

/** Flips 64 bytes in the second half of a file (past the safetensors header), in place. */
function flipBytes(file: string): void {
  const fd = openSync(file, 'r+');
  try {
    const size = fstatSync(fd).size;
    const at = Math.max(0, Math.floor(size * 0.75) - 32);
    const buf = Buffer.alloc(Math.min(64, size - at));
    readSync(fd, buf, 0, buf.length, at);
    for (let i = 0; i < buf.length; i += 1) buf[i] = (buf[i] as number) ^ 0xff;
    writeSync(fd, buf, 0, buf.length, at);
  } finally {
    closeSync(fd);
  }
}

/** Runs one planned fault for real; returns what the measurement needs that the log lacks. */
async function inject(
  c: Campaign,
  fault: PlannedFault,
  victim: { nodeId: string | null; node: string | null; attempt: number },
): Promise<{
  corrupted: Injection['corrupted'];
  inPlaceDoneMs: number | null;
  note: string | null;
}> {
  const victimNodeId = victim.nodeId;
  // The rank's processes, from /proc; a rank being started may not show yet: look again.
  let procs = rankProcesses(c.jobId, fault.victimRank);
  for (let i = 0; i < 20 && procs.length === 0; i += 1) {
    await sleep(250, c.o.signal);
    procs = rankProcesses(c.jobId, fault.victimRank);
  }
  const node = c.nodes.find((n) => n.agent.name === (procs[0]?.node ?? victim.node));
  const needsProcess = !['node-kill', 'control-plane-kill', 'partition'].includes(fault.kind);
  if (procs.length === 0 && needsProcess) {
    // Not found in /proc: kill through the agent, which knows its ranks' pids.
    if (victimNodeId !== null && (fault.kind === 'rank-kill' || fault.kind === 'corrupt-shard'))
      await c.call('POST', `/nodes/${victimNodeId}/faults`, {
        kind: 'kill-rank',
        jobId: c.jobId,
        rank: fault.victimRank,
      });
    const viaApi = fault.kind === 'rank-kill' || fault.kind === 'corrupt-shard';
    return {
      corrupted: null,
      // Nothing injected: the job only has to go on training.
      inPlaceDoneMs: viaApi ? null : Date.now(),
      note: `no process of rank ${fault.victimRank} found in /proc${fault.kind === 'rank-kill' || fault.kind === 'corrupt-shard' ? '; killed through the API instead' : '; nothing injected'}`,
    };
  }
  switch (fault.kind) {
    case 'rank-kill':
      for (const p of procs) signal(p.pid, 'SIGKILL');
      return {
        corrupted: null,
        inPlaceDoneMs: null,
        note: `SIGKILL ${procs.map((p) => p.pid).join(', ')}`,
      };
    case 'node-kill':
      if (victimNodeId === null) return { corrupted: null, inPlaceDoneMs: null, note: 'no node' };
      await c.call('POST', `/nodes/${victimNodeId}/faults`, { kind: 'kill-node' });
      return { corrupted: null, inPlaceDoneMs: null, note: null };
    case 'control-plane-kill': {
      // Training must not wait for the control plane: rank 0's own log (its node's copy)
      // says how far it got while the server was down and starting again.
      const killedAtMs = Date.now();
      const stepAtKill = c.lastStep(c.jobId, victim.attempt);
      await c.server.kill();
      await sleep(1500, c.o.signal);
      await c.server.start();
      const downS = (Date.now() - killedAtMs) / 1000;
      const stepAtBack = c.lastStep(c.jobId, victim.attempt);
      return {
        corrupted: null,
        inPlaceDoneMs: Date.now(),
        note: `SIGKILL, restarted after 1.5 s; down ${downS.toFixed(1)} s, during which rank 0 trained steps ${stepAtKill} to ${stepAtBack}`,
      };
    }
    case 'hang':
      for (const p of procs) signal(p.pid, 'SIGSTOP');
      return {
        corrupted: null,
        inPlaceDoneMs: null,
        note: `SIGSTOP ${procs.map((p) => p.pid).join(', ')}`,
      };
    case 'partition': {
      if (node === undefined) return { corrupted: null, inPlaceDoneMs: null, note: 'no node' };
      node.proxy.partition();
      await sleep((heartbeatTimeoutSeconds + 4) * 1000, c.o.signal);
      node.proxy.heal();
      return {
        corrupted: null,
        inPlaceDoneMs: Date.now(),
        note: `agent ↔ control plane partition of ${node.agent.name} for ${heartbeatTimeoutSeconds + 4} s`,
      };
    }
    case 'straggler': {
      // 50% of every 100 ms stopped, for the window: the rank runs at about half speed.
      const windowMs = 30_000;
      const end = Date.now() + windowMs;
      while (Date.now() < end && !c.o.signal.aborted) {
        for (const p of procs) signal(p.pid, 'SIGSTOP');
        await sleep(50, c.o.signal);
        for (const p of procs) signal(p.pid, 'SIGCONT');
        await sleep(50, c.o.signal);
      }
      return {
        corrupted: null,
        inPlaceDoneMs: Date.now(),
        note: `SIGSTOP/SIGCONT 50 of every 100 ms for ${windowMs / 1000} s`,
      };
    }
    case 'corrupt-shard': {
      const l1 = procs[0]?.l1Root ?? node?.agent.l1 ?? null;
      const shard = l1 === null ? null : newestCommittedShard(l1, c.jobId, fault.victimRank);
      if (shard !== null) flipBytes(shard.file);
      // The restore must happen now, before a newer checkpoint makes the corrupted one moot.
      for (const p of procs) signal(p.pid, 'SIGKILL');
      return {
        corrupted: shard === null ? null : { ...shard, rank: fault.victimRank },
        inPlaceDoneMs: null,
        note:
          shard === null
            ? 'no committed L1 shard yet: a plain rank kill'
            : `flipped 64 bytes of ${shard.file}`,
      };
    }
    default:
      return fault.kind satisfies never;
  }
}

/**
 * Runs a campaign: a cluster with the control plane as a child process, the training job, the
 * seeded faults one at a time (each once the job runs again), then the reference run and the
 * checks. Everything it started is stopped and removed at the end (unless `keep`).
 */
export async function runCampaign(o: CampaignOptions): Promise<ChaosReport> {
  const c = new Campaign(o);
  o.say(`chaos: seed ${o.seed}, data in ${c.dir}`);
  const jobIds: string[] = [];
  try {
    await c.server.start();
    c.api = new ApiClient({ server: c.server.url, token: c.server.tokens.apiToken });
    c.nodes = await startChaosCluster(c.server, c.clusterOptions);
    await c.waitForNodes();
    o.say(`control plane on ${c.server.url}; ${o.nodes} nodes and ${o.spares} spares joined`);
    const job = await c.call<Job>('POST', '/jobs', chaosJobSpec('chaos-gpt', o));
    c.jobId = job.id;
    jobIds.push(job.id);
    const running = await c.waitFor('the job to train', 180_000, () =>
      Promise.resolve(c.lastStep(job.id, 0) >= 0 ? true : null),
    );
    if (running === null)
      throw new CubeError('INFEASIBLE', `chaos: the job never trained; see ${c.dir}`);
    const startMs = Date.now();
    const plan = planCampaign({
      seed: o.seed,
      kinds: o.kinds,
      meanIntervalSeconds: o.meanIntervalSeconds,
      durationSeconds: o.durationSeconds,
      worldSize: o.nodes,
    });
    const injections: Injection[] = [];
    for (const fault of plan) {
      await sleep(fault.delaySeconds * 1000, o.signal);
      checkAborted(o.signal);
      let current = await c.job();
      if (
        current.state === 'succeeded' ||
        current.state === 'failed' ||
        current.state === 'cancelled'
      )
        break;
      await c.refreshEvents();
      const lastRunning = [...c.events]
        .reverse()
        .find((e) => e.kind === 'job-running' && e.attempt === current.attempt);
      // A node's daemon reports L2/L3 commits of its own shards only: a step survives the loss of
      // any one node once every node of the attempt has committed it beyond its own memory.
      const placedNodes = new Set((current.placement ?? []).map((p) => p.nodeId));
      const committedBy = new Map<number, Set<string>>();
      for (const e of c.events)
        if (
          e.kind === 'checkpoint-committed' &&
          e.data.level !== 'L1' &&
          e.id > (lastRunning?.id ?? 0) &&
          e.nodeId !== undefined
        )
          committedBy.set(e.data.step, (committedBy.get(e.data.step) ?? new Set()).add(e.nodeId));
      const newestSurviving = [...committedBy]
        .filter(([, nodes]) => placedNodes.size > 0 && [...placedNodes].every((n) => nodes.has(n)))
        .reduce<number | null>((m, [step]) => Math.max(m ?? -1, step), null);
      const victimNodeId =
        current.placement?.find((p) => p.rank === fault.victimRank)?.nodeId ?? null;
      const nodesNow = await c.listNodes();
      const victimNode = nodesNow.find((n) => n.id === victimNodeId)?.name ?? null;
      const procs = findRankProcesses(c.jobId);
      c.l3Root ??= procs.find((p) => p.l3Root !== null)?.l3Root ?? null;
      const attemptBefore = current.attempt;
      const stepBefore = c.lastStep(c.jobId, attemptBefore);
      const injectedAtMs = Date.now();
      const lastEventIdBefore = c.events.at(-1)?.id ?? 0;
      o.say(
        `fault ${fault.index}: ${fault.kind} on rank ${fault.victimRank} (${victimNode ?? '?'}) at step ${stepBefore}`,
      );
      const done = await inject(c, fault, {
        nodeId: victimNodeId,
        node: victimNode,
        attempt: attemptBefore,
      });
      // Running again: a new attempt resumed, or (no restart) rank 0 trained past where it was.
      let trainingAgainAtMs: number | null = null;
      const ok = await c.waitFor(
        `the job to run again after fault ${fault.index}`,
        recoveryWaitMs,
        async () => {
          await c.refreshEvents();
          current = await c.job();
          if (['succeeded', 'failed', 'cancelled'].includes(current.state)) return true;
          const after = c.events.filter((e) => e.id > lastEventIdBefore);
          if (after.some((e) => e.kind === 'job-resumed' && (e.attempt ?? 0) > attemptBefore))
            return true;
          const faulted = after.some((e) => e.kind === 'fault-detected');
          if (!faulted && done.inPlaceDoneMs !== null && current.attempt === attemptBefore) {
            if (c.lastStep(c.jobId, attemptBefore) > stepBefore + 1) {
              trainingAgainAtMs = Date.now();
              return true;
            }
          }
          return null;
        },
      );
      const windowEndMs = Date.now();
      let rejectedInLog: boolean | null = null;
      if (done.corrupted !== null) {
        const shardName = done.corrupted.file.split('/').slice(-2).join('/');
        const later = await c.job();
        rejectedInLog = false;
        for (let a = attemptBefore + 1; a <= later.attempt; a += 1)
          if (c.rankLog(c.jobId, a, done.corrupted.rank).includes(shardName)) rejectedInLog = true;
      }
      const repairs = ok === null ? [] : await c.repair();
      if (repairs.length > 0) o.say(`  repaired: ${repairs.join(', ')}`);
      injections.push({
        index: fault.index,
        kind: fault.kind,
        victimRank: fault.victimRank,
        victimNodeId,
        victimNode,
        injectedAtMs,
        attemptBefore,
        lastEventIdBefore,
        windowEndMs,
        trainingAgainAtMs,
        timedOut: ok === null,
        newestSurvivingStep: newestSurviving,
        corrupted: done.corrupted,
        corruptionRejectedInLog: rejectedInLog,
        repairs,
        note: done.note,
      });
      if (ok === null) break;
      // A hung rank the orchestrator did not kill would stay stopped forever: let it go.
      for (const p of findRankProcesses(c.jobId))
        if (p.attempt < (await c.job()).attempt) signal(p.pid, 'SIGCONT');
      await c.waitFor('the job to run after the repair', recoveryWaitMs, async () => {
        const j = await c.job();
        return j.state === 'running' || ['succeeded', 'failed', 'cancelled'].includes(j.state)
          ? true
          : null;
      });
    }
    const elapsedS = (Date.now() - startMs) / 1000;
    // The campaign ends here: a job still training is cancelled (its steps are compared below).
    let final = await c.job();
    if (!['succeeded', 'failed', 'cancelled'].includes(final.state)) {
      await c.call('POST', `/jobs/${c.jobId}/cancel`);
      final =
        (await c.waitFor('the job to stop', 60_000, async () => {
          const j = await c.job();
          return ['succeeded', 'failed', 'cancelled'].includes(j.state) ? j : null;
        })) ?? final;
    }
    await c.refreshEvents();
    const nodeNames = new Map((await c.listNodes()).map((n) => [n.id, n.name]));
    const faults = injections.map((i) => measureFault(i, c.events, nodeNames));
    const attempts = Array.from({ length: final.attempt + 1 }, (_, a) =>
      lossesByStep(c.rankLog(c.jobId, a, 0)),
    );
    const lastStep = Math.max(-1, ...attempts.flatMap((m) => [...m.keys()]));
    let reference: Map<number, string> | null = null;
    if (o.reference && lastStep >= 0) {
      o.say(`reference: the same job without faults, to step ${lastStep}`);
      await c.repair();
      const ref = await c.call<Job>('POST', '/jobs', chaosJobSpec('chaos-reference', o));
      jobIds.push(ref.id);
      await c.waitFor('the reference run', 30 * 60_000, async () => {
        const j = await c.job(ref.id);
        if (['succeeded', 'failed', 'cancelled'].includes(j.state)) return true;
        return c.lastStep(ref.id, j.attempt) >= lastStep ? true : null;
      });
      const refJob = await c.job(ref.id);
      if (!['succeeded', 'failed', 'cancelled'].includes(refJob.state))
        await c.call('POST', `/jobs/${ref.id}/cancel`);
      reference = new Map();
      for (let a = 0; a <= refJob.attempt; a += 1)
        for (const [s, l] of lossesByStep(c.rankLog(ref.id, a, 0)))
          if (!reference.has(s)) reference.set(s, l);
    }
    const replay = compareLosses(attempts, reference);
    const checkpoints = await checkL3(c);
    const violations = campaignViolations(faults, replay, checkpoints, final.state);
    const corrupted = injections.filter((i) => i.corrupted !== null);
    const throttled = faults.filter((f) => f.kind === 'straggler');
    return {
      seed: o.seed,
      durationSeconds: elapsedS,
      job: {
        id: final.id,
        state: final.state,
        restarts: final.restarts,
        lastStep: lastStep < 0 ? null : lastStep,
      },
      faults,
      byKind: summarizeByKind(faults),
      recoverySeconds: spread(
        faults.map((f) => f.recoverySeconds).filter((x): x is number => x !== null),
      ),
      corruption: {
        injected: corrupted.length,
        caught: faults.filter((f) => f.corruptionCaught === true).length,
        rejectedInLog: corrupted.filter((i) => i.corruptionRejectedInLog === true).length,
      },
      stragglers: {
        injected: throttled.length,
        detected: throttled.filter((f) => f.stragglerNamedVictim).length,
      },
      replay,
      checkpoints,
      violations,
      ok: violations.length === 0,
    };
  } finally {
    await c.server.stop().catch(() => undefined);
    await stopChaosCluster(c.nodes).catch(() => undefined);
    // Ranks outlive a killed agent only until its orphan sweep; stop any left, stopped ones too.
    for (const id of jobIds)
      for (const p of findRankProcesses(id)) {
        signal(p.pid, 'SIGKILL');
        signal(p.pid, 'SIGCONT');
      }
    rmSync(c.shmRoot, { recursive: true, force: true });
    if (!o.keep) rmSync(c.dir, { recursive: true, force: true });
    else o.say(`kept ${c.dir}`);
  }
}

/**
 * Every step the log says was committed at L3 and that retention keeps (the newest `l3Keep`)
 * must still verify: its manifest valid and every shard's size and checksum right.
 */
async function checkL3(c: Campaign): Promise<CheckpointCheck> {
  const committed = [
    ...new Set(
      c.events
        .filter(
          (e): e is Extract<Event, { kind: 'checkpoint-committed' }> =>
            e.kind === 'checkpoint-committed' && e.data.level === 'L3',
        )
        .map((e) => e.data.step),
    ),
  ].sort((a, b) => b - a);
  const kept = committed.slice(0, l3Keep);
  if (c.l3Root === null)
    return { l3Checked: 0, lost: kept.map((step) => ({ step, why: 'the L3 root is unknown' })) };
  const lost: { step: number; why: string }[] = [];
  for (const step of kept) {
    const v = await verifyStep(c.l3Root, c.jobId, step, { level: 'L3' });
    if (!v.ok)
      lost.push({
        step,
        why: `${v.state}: ${[...v.problems.map((p) => JSON.stringify(p)), ...v.shards.filter((s) => s.kind !== 'ok').map((s) => `${s.file} ${s.kind}`)].join('; ')}`.slice(
          0,
          500,
        ),
      });
  }
  return { l3Checked: kept.length, lost };
}
