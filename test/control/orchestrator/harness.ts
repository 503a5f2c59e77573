// A real orchestrator on a real SQLite store in a temporary directory, driven by an injected
// clock and fake node reports instead of agent processes: each fake node heartbeats once a
// simulated second while it is alive, carries out the launch and kill commands it is handed,
// and reports its ranks as an agent would. Tests decide when ranks progress, exit or hang.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CommandOutbox, type NodeCommand } from '../../../src/control/orchestrator/commands.ts';
import {
  Orchestrator,
  type HeartbeatRank,
} from '../../../src/control/orchestrator/orchestrator.ts';
import {
  validateJobSpec,
  type Device,
  type Event,
  type EventKind,
  type Job,
  type JobSpecInput,
  type Node,
} from '../../../src/control/model/index.ts';
import { rankLogPath } from '../../../src/control/server/rank-logs.ts';
import { createMetrics } from '../../../src/control/server/metrics.ts';
import { openSqliteStore, type SqliteStateStore } from '../../../src/control/store/index.ts';

/** One rank a fake node runs. */
export interface FakeRank {
  readonly jobId: string;
  readonly attempt: number;
  readonly rank: number;
  state: 'running' | 'exited';
  exitCode: number | null;
  signal: string | null;
  step: number | null;
  reported: boolean;
}

/** A node as a test drives it: alive (heartbeating) or not, its probes, its ranks. */
export class FakeNode {
  alive = true;
  probes: { name: string; ok: boolean; message?: string }[] = [];
  /** Device health as the agent reports it; absent, none reported. */
  devices: Device[] | null = null;
  ranks: FakeRank[] = [];
  /** Every command the control plane handed this node, in order. */
  readonly commands: NodeCommand[] = [];

  constructor(
    readonly name: string,
    readonly id: string,
  ) {}

  /** The launch commands this node received for a job. */
  launches(jobId: string): Extract<NodeCommand, { kind: 'launch' }>[] {
    return this.commands.filter(
      (c): c is Extract<NodeCommand, { kind: 'launch' }> =>
        c.kind === 'launch' && c.jobId === jobId,
    );
  }
}

export interface HarnessOptions {
  readonly workers: number;
  readonly spares: number;
  readonly exitSettleMs?: number;
}

const intervalMs = 1000;
const tickMs = 250;

/** See the file comment. */
export class Harness {
  clockMs = 1_750_000_000_000;
  readonly nodes: FakeNode[] = [];
  readonly dataDir: string;
  readonly store: SqliteStateStore;
  /** Replaced by {@link restartOrchestrator}, as a restarted control plane would be. */
  orchestrator: Orchestrator;
  readonly #options: HarnessOptions;
  #sinceHeartbeatMs = 0;

  private constructor(dataDir: string, store: SqliteStateStore, options: HarnessOptions) {
    this.dataDir = dataDir;
    this.store = store;
    this.#options = options;
    this.orchestrator = this.#newOrchestrator();
  }

  /**
   * A control-plane restart: a fresh orchestrator (empty memory: no runtimes, no outbox, no
   * heartbeat times) on the same store, started at the current clock.
   */
  restartOrchestrator(): void {
    this.orchestrator = this.#newOrchestrator();
  }

  #newOrchestrator(): Orchestrator {
    const options = this.#options;
    return new Orchestrator({
      store: this.store,
      metrics: createMetrics(),
      outbox: new CommandOutbox(),
      dataDir: this.dataDir,
      now: () => this.clockMs,
      heartbeatIntervalMs: intervalMs,
      heartbeatTimeoutMs: 5000,
      ...(options.exitSettleMs === undefined ? {} : { exitSettleMs: options.exitSettleMs }),
    });
  }

  static async start(options: HarnessOptions): Promise<Harness> {
    const dataDir = mkdtempSync(join(tmpdir(), 'cube-orchestrator-'));
    const holder: { clock?: () => number } = {};
    const store = await openSqliteStore({
      path: join(dataDir, 'cube.db'),
      now: () => (holder.clock === undefined ? Date.now() : holder.clock()),
    });
    const h = new Harness(dataDir, store, options);
    holder.clock = () => h.clockMs;
    const join_ = async (name: string, role: 'worker' | 'spare'): Promise<void> => {
      const { node } = await store.joinNode({
        name,
        role,
        labels: { server: `srv-${name}` },
        devices: [{ index: 0, kind: 'cpu', model: 'x86-64', memoryBytes: 2 ** 30, health: 'ok' }],
        hostMemoryBytes: 2 ** 34,
        host: '127.0.0.1',
        ckptPeerPort: 7100 + h.nodes.length,
        now: h.clockMs,
      });
      h.nodes.push(new FakeNode(name, node.id));
    };
    for (let i = 0; i < options.workers; i++) await join_(`node-${i}`, 'worker');
    for (let i = 0; i < options.spares; i++) await join_(`spare-${i}`, 'spare');
    await h.heartbeatAll();
    return h;
  }

  /** Joins one more spare node (an operator adding capacity). */
  async addSpare(name: string): Promise<FakeNode> {
    const { node } = await this.store.joinNode({
      name,
      role: 'spare',
      labels: { server: `srv-${name}` },
      devices: [{ index: 0, kind: 'cpu', model: 'x86-64', memoryBytes: 2 ** 30, health: 'ok' }],
      hostMemoryBytes: 2 ** 34,
      host: '127.0.0.1',
      ckptPeerPort: 7200 + this.nodes.length,
      now: this.clockMs,
    });
    const fake = new FakeNode(name, node.id);
    this.nodes.push(fake);
    await this.heartbeat(fake);
    return fake;
  }

  async close(): Promise<void> {
    await this.store.close();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  node(name: string): FakeNode {
    const n = this.nodes.find((x) => x.name === name);
    if (n === undefined) throw new Error(`no fake node ${name}`);
    return n;
  }

  nodeById(id: string): FakeNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no fake node with id ${id}`);
    return n;
  }

  async stored(name: string): Promise<Node> {
    const n = await this.store.getNode(this.node(name).id);
    if (n === null) throw new Error(`node ${name} not in the store`);
    return n;
  }

  async job(id: string): Promise<Job> {
    const j = await this.store.getJob(id);
    if (j === null) throw new Error(`no job ${id}`);
    return j;
  }

  /** The node names of a job's placement, by rank. */
  async placementNames(id: string): Promise<string[]> {
    const job = await this.job(id);
    return (job.placement ?? []).map((p) => this.nodeById(p.nodeId).name);
  }

  async events(filter: { jobId?: string; kinds?: readonly EventKind[] } = {}): Promise<Event[]> {
    return this.store.listEvents(filter);
  }

  /** One heartbeat of a fake node: its ranks as an agent reports them; carries out the reply. */
  async heartbeat(n: FakeNode): Promise<void> {
    const stored = await this.store.getNode(n.id);
    if (stored === null) return;
    const ranks: HeartbeatRank[] = n.ranks
      .filter((r) => r.state !== 'exited' || !r.reported)
      .map((r) => ({
        jobId: r.jobId,
        attempt: r.attempt,
        rank: r.rank,
        state: r.state,
        exitCode: r.exitCode,
        signal: r.signal,
        progress: r.step === null ? null : { step: r.step },
      }));
    for (const r of n.ranks) if (r.state === 'exited') r.reported = true;
    const commands = await this.orchestrator.heartbeat(stored, {
      health: { probes: n.probes, ...(n.devices === null ? {} : { devices: n.devices }) },
      ranks,
    });
    for (const c of commands) {
      n.commands.push(c);
      if (c.kind === 'launch')
        for (const r of c.ranks)
          n.ranks.push({
            jobId: c.jobId,
            attempt: c.attempt,
            rank: r.rank,
            state: 'running',
            exitCode: null,
            signal: null,
            step: null,
            reported: false,
          });
      else if (c.kind === 'kill')
        for (const r of n.ranks)
          if (r.jobId === c.jobId && r.attempt <= c.attempt && r.state === 'running') {
            r.state = 'exited';
            r.signal = 'SIGTERM';
          }
    }
  }

  async heartbeatAll(): Promise<void> {
    for (const n of this.nodes) if (n.alive) await this.heartbeat(n);
  }

  /** Advances the clock by `ms`, a tick at a time, heartbeating live nodes each second. */
  async run(ms: number): Promise<void> {
    for (let left = ms; left > 0; left -= tickMs) {
      const step = Math.min(tickMs, left);
      this.clockMs += step;
      this.#sinceHeartbeatMs += step;
      if (this.#sinceHeartbeatMs >= intervalMs) {
        this.#sinceHeartbeatMs = 0;
        await this.heartbeatAll();
      }
      await this.orchestrator.tick();
    }
  }

  /** Runs until `probe` holds, at most `maxMs` of simulated time; fails naming `what`. */
  async runUntil<T>(what: string, maxMs: number, probe: () => Promise<T | null>): Promise<T> {
    for (let spent = 0; spent <= maxMs; spent += tickMs) {
      const v = await probe();
      if (v !== null) return v;
      await this.run(tickMs);
    }
    throw new Error(`${what} did not happen within ${maxMs} ms of simulated time`);
  }

  /** Submits a job: 2 ranks, one per node, unless the overrides say otherwise. */
  async submit(overrides: Partial<JobSpecInput> = {}): Promise<Job> {
    return this.store.createJob(
      validateJobSpec({
        name: 'unit',
        command: ['python', 'train.py'],
        ranks: { nodes: 2, devicesPerNode: 1 },
        deviceType: 'cpu',
        restart: { maxRestarts: 3, backoffSeconds: 1 },
        faults: { heartbeatTimeoutSeconds: 5, hangTimeoutSeconds: 30 },
        ...overrides,
      }),
      { now: this.clockMs },
    );
  }

  /** The ranks of a job's current attempt, wherever they run. */
  async currentRanks(jobId: string): Promise<{ node: FakeNode; rank: FakeRank }[]> {
    const job = await this.job(jobId);
    return this.nodes.flatMap((node) =>
      node.ranks
        .filter((r) => r.jobId === jobId && r.attempt === job.attempt)
        .map((rank) => ({ node, rank })),
    );
  }

  /** Submits a job and runs until it trains (every rank reported step 0). */
  async startJob(overrides: Partial<JobSpecInput> = {}): Promise<Job> {
    const job = await this.submit(overrides);
    await this.runUntil('the launch', 5000, async () =>
      (await this.currentRanks(job.id)).length > 0 ? true : null,
    );
    await this.progress(job.id, 0);
    return this.job(job.id);
  }

  /** Ranks of the current attempt (all, or those listed) report `step`, as the agents push it. */
  async progress(jobId: string, step: number, ranks?: readonly number[]): Promise<void> {
    for (const { node, rank } of await this.currentRanks(jobId)) {
      if (rank.state !== 'running' || (ranks !== undefined && !ranks.includes(rank.rank))) continue;
      rank.step = step;
      const stored = await this.store.getNode(node.id);
      if (stored === null) continue;
      await this.orchestrator.agentEvents(stored, [
        {
          kind: 'progress',
          jobId,
          attempt: rank.attempt,
          rank: rank.rank,
          step,
          loss: 1 / (step + 1),
          tokensPerS: 1000,
        },
      ]);
    }
  }

  /** A rank of the current attempt reports having restored `step` from L1. */
  async restored(jobId: string, step: number): Promise<void> {
    for (const { node, rank } of await this.currentRanks(jobId)) {
      const stored = await this.store.getNode(node.id);
      if (stored === null) continue;
      await this.orchestrator.agentEvents(stored, [
        { kind: 'restored', jobId, attempt: rank.attempt, rank: rank.rank, step, level: 'L1' },
      ]);
    }
  }

  /**
   * A rank exits: its node's agent pushes the exit at once, after forwarding the rank's last
   * output (written where the server keeps rank logs).
   */
  async exit(
    jobId: string,
    rankNumber: number,
    how: { code?: number | null; signal?: string | null; lastLines?: readonly string[] },
  ): Promise<void> {
    const found = (await this.currentRanks(jobId)).find((x) => x.rank.rank === rankNumber);
    if (found === undefined) throw new Error(`rank ${rankNumber} of ${jobId} is not running`);
    const { node, rank } = found;
    if (how.lastLines !== undefined) {
      const path = rankLogPath(this.dataDir, jobId, rank.attempt, rank.rank);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, `${how.lastLines.join('\n')}\n\n`);
    }
    rank.state = 'exited';
    rank.exitCode = how.code ?? null;
    rank.signal = how.signal ?? null;
    rank.reported = true;
    const stored = await this.store.getNode(node.id);
    if (stored === null) return;
    await this.orchestrator.agentEvents(stored, [
      {
        kind: 'rank-exited',
        jobId,
        attempt: rank.attempt,
        rank: rank.rank,
        exitCode: rank.exitCode,
        signal: rank.signal,
      },
    ]);
  }

  /** The data of every `fault-detected` event of a job, oldest first. */
  async faults(jobId: string): Promise<FaultData[]> {
    return (await this.events({ jobId, kinds: ['fault-detected'] })).map(
      (e) => ({ ...(e.data as object), nodeId: e.nodeId }) as FaultData,
    );
  }
}

/** What `fault-detected` carries, as the tests read it. */
export interface FaultData {
  readonly cause: string;
  readonly message: string;
  readonly classification: 'application' | 'node' | 'unknown';
  readonly blame: readonly { node: string; blamed: boolean; why: string }[];
  readonly nodeId?: string;
}
