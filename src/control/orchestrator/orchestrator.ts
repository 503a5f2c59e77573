import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { CubeError } from '../../core/index.ts';
import {
  isTerminalJobState,
  stragglerPolicyOf,
  worldSizeOf,
  type FaultCause,
  type FaultClassification,
  type Job,
  type NewEvent,
  type Node,
  type RankPlacement,
} from '../model/index.ts';
import type { JobPatch, NodePatch, StateStore } from '../store/index.ts';
import {
  replaceNode,
  replicaPeersFor,
  scheduleQueue,
  type Allocation,
  type SchedulerNode,
} from '../scheduler/index.ts';
import type { ControlMetrics } from '../server/metrics.ts';
import { rankLogPath } from '../server/rank-logs.ts';
import type { CommandOutbox } from './commands.ts';
import { type NodeCommand, type PeerEndpoint } from './commands.ts';
import { newMasterKey, peerAccessFor } from '../../ckpt/daemon/index.ts';
import { StragglerDetector } from './stragglers.ts';

/** One rank of a job's current attempt, as the agents report it. */
interface RankRuntime {
  state: 'launched' | 'running' | 'exited';
  exitCode: number | null;
  signal: string | null;
  lastSignMs: number;
  step: number | null;
}

/** What the orchestrator keeps in memory about a job between ticks (rebuilt from heartbeats after a restart). */
interface JobRuntime {
  attempt: number;
  ranks: Map<number, RankRuntime>;
  /** Set when a fault was detected: recovery starts at `notBeforeMs`. */
  recovery: { failedNodeIds: Set<string>; detectedAtMs: number; notBeforeMs: number } | null;
  /** Detection time of the last fault, for the recovery-duration metric and `job-resumed`. */
  recoveringSinceMs: number | null;
  restoredStep: number | null;
  resumed: boolean;
  launchedAtMs: number;
  /** This attempt's straggler detector, made with its first progress report. */
  stragglers?: StragglerDetector;
  /** A straggler to replace at the next L2/L3 commit (policy `replace`), and its step then. */
  stragglerToReplace?: { readonly nodeId: string; readonly rank: number; readonly step: number };
}

/** A non-zero rank exit waiting out the settle window before it is blamed (`exitSettleMs`). */
interface PendingExit {
  readonly atMs: number;
  readonly nodeId: string;
  readonly rank: number;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly step: number | null;
  readonly message: string;
  readonly lastSignMs: number;
}

/** Why one node of a faulted job was or was not blamed (`fault-detected`'s `data.blame`). */
type Blame = {
  readonly nodeId: string;
  readonly node: string;
  readonly blamed: boolean;
  readonly why: string;
};

/** A fault, judged: what it is, which nodes it is blamed on and why. */
interface Finding {
  readonly cause: FaultCause;
  readonly classification: FaultClassification;
  /** The nodes cordoned and replaced: empty unless `classification` is `node`. */
  readonly blamedNodeIds: readonly string[];
  readonly message: string;
  /** The last sign of life before the fault, for the detection-time metric. */
  readonly lastSignMs: number;
  readonly blame: readonly Blame[];
  readonly rank?: number;
  /** Set for an application failure: what a repeat of the same bug looks like. */
  readonly fingerprint?: string;
}

/** A rank's report inside a heartbeat (docs/control-protocol.md). */
export interface HeartbeatRank {
  readonly jobId: string;
  readonly attempt: number;
  readonly rank: number;
  readonly state: 'starting' | 'running' | 'exited';
  readonly exitCode?: number | null;
  readonly signal?: string | null;
  readonly progress?: { readonly step: number; readonly at?: number | string | null } | null;
}

/** What an agent pushes at once. */
export type AgentEvent =
  | {
      readonly kind: 'rank-exited';
      readonly jobId: string;
      readonly attempt: number;
      readonly rank: number;
      readonly exitCode: number | null;
      readonly signal: string | null;
    }
  | {
      readonly kind: 'progress';
      readonly jobId: string;
      readonly attempt: number;
      readonly rank: number;
      readonly step: number;
      readonly loss: number | null;
      readonly tokensPerS: number | null;
      /** The rank's own step time, when it reports one. */
      readonly stepTimeS?: number | null;
    }
  | {
      readonly kind: 'checkpoint-committed';
      readonly jobId: string;
      readonly level: 'L1' | 'L2' | 'L3';
      readonly step: number;
    }
  | {
      readonly kind: 'restored';
      readonly jobId: string;
      readonly attempt: number;
      readonly rank: number;
      readonly step: number;
      readonly level: 'L1' | 'L2' | 'L3';
    }
  | { readonly kind: 'probe-failed'; readonly name: string; readonly message: string };

export interface OrchestratorOptions {
  readonly store: StateStore;
  readonly metrics: ControlMetrics;
  readonly outbox: CommandOutbox;
  /** Where jobs' L3 checkpoints go unless their spec says otherwise. */
  readonly dataDir: string;
  readonly now?: () => number;
  /** Node heartbeat timeout when no job on the node sets its own (default 5 s). */
  readonly heartbeatTimeoutMs?: number;
  /** The interval agents heartbeat at (default 1 s): a node silent for 2.5 intervals is suspect. */
  readonly heartbeatIntervalMs?: number;
  /**
   * How long a non-zero rank exit waits before it is blamed (default 1.5 s): when a node dies,
   * its peers' ranks often crash first (their collective lost a member); by then the dead node
   * has gone silent and takes the blame instead of the survivor.
   */
  readonly exitSettleMs?: number;
  /**
   * The master key checkpoint-peer keys are derived from (`<dataDir>/peer-master.key`, made
   * by the control plane); absent, a key of this process's own (tests).
   */
  readonly peerMasterKey?: Buffer;
}

/** The master key of an Orchestrator given none: peer keys then last as long as the process. */
const processPeerMasterKey = newMasterKey();

function schedulerNode(n: Node): SchedulerNode {
  return {
    id: n.id,
    name: n.name,
    state: n.state,
    role: n.role,
    labels: n.labels,
    devices: n.devices,
  };
}

function healthSignature(health: Node['health']): string {
  if (health === null) return '';
  return `${(health.probes ?? []).map((p) => `${p.name}:${p.ok ? 1 : 0}`).join(',')}|${(health.devices ?? []).map((d) => d.health).join(',')}`;
}

function nodesOf(placement: readonly RankPlacement[]): string[] {
  return [...new Set(placement.map((r) => r.nodeId))];
}

/**
 * The control loop: schedules queued jobs as gangs, turns placements into launch commands,
 * follows ranks through the agents' reports, detects faults (a rank exiting non-zero, a node
 * missing heartbeats, a rank making no progress, a failing probe), classifies them by the
 * evidence on their nodes (docs/control-protocol.md, "Faults and recovery") and recovers: a
 * node fault cordons the blamed node and takes a hot spare (else a free node, else waits); an
 * application or unknown fault restarts the gang in place. Either way the gang is stopped and
 * relaunched, and its ranks restore the newest complete checkpoint from the nearest level.
 */
export class Orchestrator {
  readonly #o: OrchestratorOptions;
  readonly #now: () => number;
  readonly #jobs = new Map<string, JobRuntime>();
  /** Last sign of life per node, in memory: heartbeats are not state changes worth a write. */
  readonly #lastSeen = new Map<string, number>();
  #startedMs: number;
  /**
   * Non-zero rank exits waiting to be judged (see `exitSettleMs`), by job and attempt: an
   * older attempt's exits, still settling when a newer attempt launches, never fault it.
   */
  readonly #pendingExits = new Map<
    string,
    { jobId: string; attempt: number; exits: PendingExit[] }
  >();
  /** The newest health each node reported, for the evidence behind a blame. */
  readonly #lastHealth = new Map<string, Node['health']>();
  /**
   * The fingerprint of each job's last fault when it was an application failure (exit code or
   * signal, the rank's last log line, its step). The same fingerprint again, from an attempt
   * that restored a checkpoint, is a deterministic bug.
   */
  readonly #appFaults = new Map<string, string>();
  readonly #l1CommittedAt = new Map<string, number>();
  /**
   * The newest heartbeat of each node not yet stored; `withHealth` when its health is new or
   * changed since the last one stored.
   */
  readonly #heartbeatsToStore = new Map<
    string,
    { at: number; health: Node['health']; withHealth: boolean }
  >();
  #heartbeatsStoredMs = 0;
  /** True while a due batch of heartbeat times is being written, a chunk per tick. */
  #heartbeatsDraining = false;
  /** What of each node's health matters (probes passing, devices' health), to see it change. */
  readonly #healthSignatures = new Map<string, string>();
  /** Nodes whose health changed: stored with the next tick, not the next batch. */
  readonly #healthChanged = new Set<string>();
  /** Nodes whose fault is being handled right now. */
  readonly #faultingNodes = new Set<string>();
  #ticking = false;

  constructor(options: OrchestratorOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#startedMs = this.#now();
  }

  /**
   * Called once the server listens: every node's grace after a control-plane (re)start counts
   * from when agents can reach it, not from when this object was built. Building the app and
   * binding the port can take seconds on a loaded machine, and counted from construction that
   * time was taken off the grace, so every node was declared down at the first tick.
   */
  serving(): void {
    this.#startedMs = this.#now();
  }

  get outbox(): CommandOutbox {
    return this.#o.outbox;
  }

  // Every change goes to the store with its events in one transaction; the store tells its
  // subscribers (the live stream) once they are durable.
  async #emit(events: readonly NewEvent[]): Promise<void> {
    if (events.length > 0) await this.#o.store.appendEvents(events);
  }

  #updateJob(job: Job, patch: JobPatch, events: readonly NewEvent[] = []): Promise<Job> {
    return this.#o.store.updateJob(job.id, patch, events);
  }

  #updateNode(node: Node, patch: NodePatch, events: readonly NewEvent[] = []): Promise<Node> {
    return this.#o.store.updateNode(node.id, patch, events);
  }

  #runtime(job: Job): JobRuntime {
    let rt = this.#jobs.get(job.id);
    if (rt === undefined || rt.attempt !== job.attempt) {
      rt = {
        attempt: job.attempt,
        ranks: new Map(),
        recovery: rt?.recovery ?? null,
        recoveringSinceMs: rt?.recoveringSinceMs ?? null,
        restoredStep: null,
        resumed: false,
        launchedAtMs: this.#now(),
      };
      this.#jobs.set(job.id, rt);
    }
    return rt;
  }

  /** An agent's heartbeat: note the node alive, take in its ranks' states, hand it its commands. */
  async heartbeat(
    node: Node,
    report: {
      readonly health?: Node['health'];
      readonly ranks: readonly HeartbeatRank[];
      /**
       * The reported ranks' jobs as the caller read them for this heartbeat (null: no such
       * job), so that the hot path reads each job once per heartbeat, not once per rank; a job
       * absent here is read from the store.
       */
      readonly jobs?: ReadonlyMap<string, Job | null>;
    },
  ): Promise<NodeCommand[]> {
    const now = this.#now();
    this.#lastSeen.set(node.id, now);
    if (report.health !== undefined) this.#lastHealth.set(node.id, report.health);
    let current = node;
    if (node.state === 'down') {
      // A node cordoned before it went silent (a fault, or a user) comes back cordoned: only
      // `cube uncordon` (or its evidence clearing, for a user to judge) returns it to service.
      const wasCordoned = await this.#cordonedWhenDown(node.id);
      current = await this.#updateNode(
        node,
        {
          state: wasCordoned ? 'cordoned' : 'ready',
          lastHeartbeatAt: now,
          health: report.health ?? null,
        },
        [
          {
            kind: 'node-up',
            nodeId: node.id,
            data: {
              reason: wasCordoned
                ? 'heartbeats resumed; it stays cordoned, as it was before it went down'
                : 'heartbeats resumed',
            },
          },
        ],
      );
    } else
      // An unchanged heartbeat is not a state change: its time and health wait in memory and
      // are written for many nodes in one transaction (see #flushHeartbeats).
      this.#noteHeartbeat(node.id, now, report.health ?? null);
    // A rank's exit may change its job (a fault, a restart): the next rank of that job in this
    // heartbeat must see the change, so the job is read again after one; so is every job after
    // a node fault here.
    const jobs = new Map(report.jobs);
    const failing = (report.health?.probes ?? []).filter((p) => !p.ok);
    if (failing.length > 0 && current.state === 'ready') {
      jobs.clear();
      await this.#nodeFault(
        current,
        'probe-failed',
        failing.map((p) => `${p.name}: ${p.message ?? 'failed'}`).join('; '),
      );
    }
    for (const r of report.ranks)
      if (await this.#rankReport(current, r, now, jobs.get(r.jobId))) jobs.delete(r.jobId);
    return this.#o.outbox.take(node.id);
  }

  /** Takes one rank's report; true when it may have changed the job (read it again). */
  async #rankReport(
    node: Node,
    r: HeartbeatRank,
    now: number,
    read: Job | null | undefined,
  ): Promise<boolean> {
    const job = read !== undefined ? read : await this.#o.store.getJob(r.jobId);
    if (job === null || isTerminalJobState(job.state)) {
      if (r.state !== 'exited')
        this.#o.outbox.push(node.id, { kind: 'kill', jobId: r.jobId, attempt: r.attempt });
      return false;
    }
    if (r.attempt !== job.attempt) {
      // A survivor of an older attempt: make sure it is stopped.
      if (r.state !== 'exited' && r.attempt < job.attempt)
        this.#o.outbox.push(node.id, { kind: 'kill', jobId: r.jobId, attempt: r.attempt });
      return false;
    }
    const rt = this.#runtime(job);
    const known = rt.ranks.get(r.rank);
    if (r.state === 'exited') {
      if (known?.state !== 'exited')
        await this.#rankExited(job, node, r.rank, r.exitCode ?? null, r.signal ?? null);
      return true;
    }
    const progressAt = r.progress?.at;
    const sign = typeof progressAt === 'number' ? progressAt : now;
    if (known === undefined)
      rt.ranks.set(r.rank, {
        state: r.state === 'running' ? 'running' : 'launched',
        exitCode: null,
        signal: null,
        lastSignMs: sign,
        step: r.progress?.step ?? null,
      });
    else if (r.progress !== undefined && r.progress !== null && r.progress.step !== known.step) {
      known.step = r.progress.step;
      known.lastSignMs = now;
      known.state = 'running';
    }
    return false;
  }

  /** What an agent pushed at once (rank exits, progress, checkpoint commits, probe failures). */
  async agentEvents(node: Node, events: readonly AgentEvent[]): Promise<void> {
    const now = this.#now();
    this.#lastSeen.set(node.id, now);
    for (const e of events) {
      switch (e.kind) {
        case 'rank-exited': {
          const job = await this.#o.store.getJob(e.jobId);
          if (job === null || job.attempt !== e.attempt || isTerminalJobState(job.state)) break;
          await this.#rankExited(job, node, e.rank, e.exitCode, e.signal);
          break;
        }
        case 'progress': {
          const job = await this.#o.store.getJob(e.jobId);
          if (job === null || job.attempt !== e.attempt) break;
          await this.#o.store.recordProgress([
            {
              jobId: e.jobId,
              attempt: e.attempt,
              rank: e.rank,
              step: e.step,
              loss: e.loss,
              tokensPerS: e.tokensPerS,
              at: now,
            },
          ]);
          await this.#progress(job, e.rank, e.step, now);
          await this.#stragglers(job, node, e.rank, e.step, e.stepTimeS ?? null, now);
          break;
        }
        case 'checkpoint-committed': {
          const job = await this.#o.store.getJob(e.jobId);
          if (job === null) break;
          const events: NewEvent[] = [
            {
              kind: 'checkpoint-committed',
              jobId: e.jobId,
              nodeId: node.id,
              data: { level: e.level, step: e.step },
            },
          ];
          await this.#o.store.recordCheckpoint(
            { jobId: e.jobId, step: e.step, level: e.level, at: now },
            events,
          );
          if (e.level !== 'L1') await this.#replaceStraggler(job, node.id, e.step, e.level);
          // Commit latency of L2 and L3, measured from the step's L1 commit (the save itself
          // happens inside the rank, out of the control plane's sight).
          const key = `${e.jobId}:${e.step}`;
          if (e.level === 'L1') {
            if (!this.#l1CommittedAt.has(key)) this.#l1CommittedAt.set(key, now);
            if (this.#l1CommittedAt.size > 10_000) this.#l1CommittedAt.clear();
          } else {
            const l1 = this.#l1CommittedAt.get(key);
            if (l1 !== undefined)
              this.#o.metrics.checkpointCommitSeconds.observe(
                { level: e.level },
                (now - l1) / 1000,
              );
          }
          break;
        }
        case 'restored': {
          const job = await this.#o.store.getJob(e.jobId);
          if (job === null || job.attempt !== e.attempt) break;
          const rt = this.#runtime(job);
          rt.restoredStep = e.step;
          await this.#emit([
            {
              kind: 'job-restored',
              jobId: e.jobId,
              nodeId: node.id,
              rank: e.rank,
              attempt: e.attempt,
              data: { step: e.step, level: e.level },
            },
          ]);
          break;
        }
        case 'probe-failed': {
          const fresh = await this.#o.store.getNode(node.id);
          if (fresh !== null && fresh.state === 'ready')
            await this.#nodeFault(fresh, 'probe-failed', `${e.name}: ${e.message}`);
          break;
        }
        default:
          e satisfies never;
      }
    }
  }

  async #progress(job: Job, rank: number, step: number, now: number): Promise<void> {
    const rt = this.#runtime(job);
    const r = rt.ranks.get(rank);
    if (r === undefined)
      rt.ranks.set(rank, { state: 'running', exitCode: null, signal: null, lastSignMs: now, step });
    else {
      r.state = 'running';
      r.step = step;
      r.lastSignMs = now;
    }
    if (job.state === 'scheduled') {
      const worldSize = worldSizeOf(job.spec);
      const running = [...rt.ranks.values()].filter((x) => x.state === 'running').length;
      if (running === worldSize) {
        const events: NewEvent[] = [
          { kind: 'job-running', jobId: job.id, attempt: job.attempt, data: {} },
        ];
        if (job.attempt > 0 && !rt.resumed) {
          rt.resumed = true;
          events.push({ kind: 'job-resumed', jobId: job.id, attempt: job.attempt, data: { step } });
          if (rt.recoveringSinceMs !== null)
            this.#o.metrics.recoverySeconds.observe((now - rt.recoveringSinceMs) / 1000);
          rt.recoveringSinceMs = null;
        }
        await this.#updateJob(
          job,
          { state: 'running', reason: null, ...(job.startedAt === null ? { startedAt: now } : {}) },
          events,
        );
      }
    }
  }

  /**
   * Feeds a progress report to the attempt's straggler detector; a rank that became
   * persistently slower than the rest of its gang is a `straggler` event with its evidence.
   */
  async #stragglers(
    job: Job,
    node: Node,
    rank: number,
    step: number,
    stepTimeS: number | null,
    now: number,
  ): Promise<void> {
    const rt = this.#runtime(job);
    rt.stragglers ??= new StragglerDetector(stragglerPolicyOf(job.spec));
    if (job.state !== 'running' && job.state !== 'scheduled') return;
    const policy = stragglerPolicyOf(job.spec);
    const f = rt.stragglers.observe({ rank, step, atMs: now, stepTimeS });
    if (f === null) return;
    if (policy.action === 'replace' && rt.stragglerToReplace === undefined)
      rt.stragglerToReplace = { nodeId: node.id, rank, step };
    await this.#emit([
      {
        kind: 'straggler',
        jobId: job.id,
        nodeId: node.id,
        rank,
        attempt: job.attempt,
        data: { ...f, steps: [...f.steps], nodeId: node.id, node: node.name },
      },
    ]);
  }

  /**
   * The straggler policy's `replace`: at the first L2/L3 commit after a straggler was found
   * (so its rank's state survives its node), and while it still straggles and a spare is
   * ready, its node is cordoned (`by: 'straggler'`) and the gang relaunched from that
   * checkpoint with the spare in its place. Not a fault: no `fault-detected`, no restart
   * counted. Without a ready spare the job keeps running; the next commit tries again.
   */
  async #replaceStraggler(
    job: Job,
    committedBy: string,
    step: number,
    level: string,
  ): Promise<void> {
    const rt = this.#jobs.get(job.id);
    const pending = rt?.stragglerToReplace;
    if (rt === undefined || pending === undefined || rt.attempt !== job.attempt) return;
    if (job.state !== 'running' || step < pending.step) return;
    // Each node's daemon commits L2/L3 for its own shards: only the straggler's node's commit
    // says that its shards of `step` outlive it (the others keep theirs in L1). Another node's
    // commit of the step would send the spare back to an older checkpoint than the one named.
    if (committedBy !== pending.nodeId) return;
    if (!(rt.stragglers?.straggling.includes(pending.rank) ?? false)) {
      rt.stragglerToReplace = undefined; // it recovered: nothing to replace
      return;
    }
    const now = this.#now();
    const nodes = await this.#o.store.listNodes();
    const spareReady = nodes.some(
      (n) =>
        n.role === 'spare' && n.state === 'ready' && this.#silentNodes([n.id], now).length === 0,
    );
    if (!spareReady) return;
    const node = nodes.find((n) => n.id === pending.nodeId);
    rt.stragglerToReplace = undefined;
    const reason = `rank ${pending.rank} on ${node?.name ?? pending.nodeId} is a straggler: its node is replaced from a spare, resuming from the ${level} checkpoint of step ${step}`;
    if (node !== undefined && node.state === 'ready')
      await this.#updateNode(node, { state: 'cordoned' }, [
        { kind: 'node-cordoned', nodeId: node.id, data: { reason, by: 'straggler' } },
      ]);
    for (const id of nodesOf(job.placement ?? []))
      this.#o.outbox.push(id, { kind: 'kill', jobId: job.id, attempt: job.attempt });
    rt.recovery = { failedNodeIds: new Set([pending.nodeId]), detectedAtMs: now, notBeforeMs: now };
    rt.recoveringSinceMs = now;
    await this.#updateJob(job, { state: 'recovering', reason }, [
      {
        kind: 'job-restarting',
        jobId: job.id,
        attempt: job.attempt,
        data: { reason, restarts: job.restarts, backoffSeconds: 0, inPlace: false },
      },
    ]);
  }

  async #rankExited(
    job: Job,
    node: Node,
    rank: number,
    exitCode: number | null,
    signal: string | null,
  ): Promise<void> {
    const rt = this.#runtime(job);
    const r = rt.ranks.get(rank);
    if (r?.state === 'exited') return;
    rt.ranks.set(rank, {
      state: 'exited',
      exitCode,
      signal,
      lastSignMs: this.#now(),
      step: r?.step ?? null,
    });
    await this.#emit([
      {
        kind: 'rank-exited',
        jobId: job.id,
        nodeId: node.id,
        rank,
        attempt: job.attempt,
        data: { exitCode, signal },
      },
    ]);
    if (job.state === 'recovering') return;
    if (exitCode !== 0) {
      const key = `${job.id}:${job.attempt}`;
      const pending = this.#pendingExits.get(key) ?? {
        jobId: job.id,
        attempt: job.attempt,
        exits: [],
      };
      pending.exits.push({
        atMs: this.#now(),
        nodeId: node.id,
        rank,
        exitCode,
        signal,
        step: r?.step ?? null,
        message: `rank ${rank} on ${node.name} exited ${signal === null ? `with code ${exitCode}` : `by ${signal}`}`,
        lastSignMs: r?.lastSignMs ?? this.#now(),
      });
      this.#pendingExits.set(key, pending);
      return;
    }
    const worldSize = worldSizeOf(job.spec);
    const done = [...rt.ranks.values()].filter(
      (x) => x.state === 'exited' && x.exitCode === 0,
    ).length;
    if (done === worldSize) {
      this.#appFaults.delete(job.id);
      await this.#updateJob(job, { state: 'succeeded', endedAt: this.#now(), reason: null }, [
        { kind: 'job-succeeded', jobId: job.id, attempt: job.attempt, data: {} },
      ]);
    }
  }

  /** A node-level fault: cordon it and recover every job running there. */
  async #nodeFault(node: Node, cause: FaultCause, message: string): Promise<void> {
    // A failing probe arrives twice (the agent's event and its next heartbeat), often at once:
    // one of them handles it.
    if (this.#faultingNodes.has(node.id)) return;
    this.#faultingNodes.add(node.id);
    try {
      const fresh = await this.#o.store.getNode(node.id);
      if (fresh === null || fresh.state !== 'ready') return;
      await this.#handleNodeFault(fresh, cause, message);
    } finally {
      this.#faultingNodes.delete(node.id);
    }
  }

  async #handleNodeFault(node: Node, cause: FaultCause, message: string): Promise<void> {
    this.#o.metrics.faultsTotal.inc({ cause });
    const jobs = (
      await this.#o.store.listJobs({ states: ['scheduled', 'running', 'recovering'] })
    ).filter((j) => j.placement?.some((r) => r.nodeId === node.id) === true);
    if (jobs.length === 0) {
      const blame: Blame[] = [{ nodeId: node.id, node: node.name, blamed: true, why: message }];
      await this.#updateNode(node, { state: node.state === 'down' ? 'down' : 'cordoned' }, [
        {
          kind: 'fault-detected',
          nodeId: node.id,
          data: { cause, message, classification: 'node', blame },
        },
        ...(node.state === 'down'
          ? []
          : [
              {
                kind: 'node-cordoned' as const,
                nodeId: node.id,
                data: { reason: message, by: 'fault' as const },
              },
            ]),
      ]);
      return;
    }
    for (const job of jobs)
      await this.#jobFault(
        job,
        await this.#nodeFinding(job, [node.id], {
          cause,
          message,
          why: message,
          lastSignMs: this.#lastSeen.get(node.id) ?? this.#now(),
        }),
      );
  }

  /**
   * The node evidence against each node: missed heartbeats, a down or gone agent, failing
   * probes, failed devices. An empty list means the node looks healthy.
   */
  async #evidence(nodeIds: readonly string[], now: number): Promise<Map<string, string[]>> {
    const silent = new Set(this.#silentNodes(nodeIds, now));
    const out = new Map<string, string[]>();
    for (const id of nodeIds) {
      const node = await this.#o.store.getNode(id);
      const reasons: string[] = [];
      const last = this.#lastSeen.get(id);
      if (node === null || node.state === 'left') reasons.push('agent gone');
      else if (node.state === 'down') reasons.push('down, missed heartbeats');
      else if (silent.has(id))
        reasons.push(
          `missed heartbeats, silent for ${((now - (last ?? this.#startedMs)) / 1000).toFixed(1)} s`,
        );
      const health = this.#lastHealth.get(id) ?? node?.health ?? null;
      const failing = (health?.probes ?? []).filter((p) => !p.ok);
      if (failing.length > 0)
        reasons.push(`probe ${failing.map((p) => p.name).join(', ')} failing`);
      const failed = (health?.devices ?? []).filter((d) => d.health === 'failed');
      if (failed.length > 0) reasons.push(`device ${failed.map((d) => d.index).join(', ')} failed`);
      out.set(id, reasons);
    }
    return out;
  }

  /** Node names by id, for messages and blame entries. */
  async #names(nodeIds: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const id of nodeIds) out.set(id, (await this.#o.store.getNode(id))?.name ?? id);
    return out;
  }

  /** What the job's pending exits say about a node that is not blamed. */
  #exitsOn(job: Job, nodeId: string): string {
    const exits = this.#pendingExits.get(`${job.id}:${job.attempt}`)?.exits ?? [];
    const here = exits.filter((e) => e.nodeId === nodeId);
    if (here.length === 0) return '';
    return `${here.map((e) => e.message.replace(/ on \S+/, '')).join(', ')}, `;
  }

  /** A fault blamed on `blamedNodeIds` by node evidence: every other node of the job is named, not blamed. */
  async #nodeFinding(
    job: Job,
    blamedNodeIds: readonly string[],
    f: {
      cause: FaultCause;
      message: string;
      why: string | ((nodeId: string) => string);
      lastSignMs: number;
    },
  ): Promise<Finding> {
    const ids = [...new Set([...nodesOf(job.placement ?? []), ...blamedNodeIds])];
    const names = await this.#names(ids);
    const evidence = await this.#evidence(ids, this.#now());
    const blame = ids.map((id): Blame => {
      const blamed = blamedNodeIds.includes(id);
      const reasons = evidence.get(id) ?? [];
      return {
        nodeId: id,
        node: names.get(id) ?? id,
        blamed,
        why: blamed
          ? typeof f.why === 'string'
            ? f.why
            : f.why(id)
          : reasons.length > 0
            ? `not blamed for this fault yet: ${reasons.join('; ')}`
            : `${this.#exitsOn(job, id)}heartbeats on time, probes passing, devices healthy: no node evidence`,
      };
    });
    return {
      cause: f.cause,
      classification: 'node',
      blamedNodeIds,
      message: f.message,
      lastSignMs: f.lastSignMs,
      blame,
    };
  }

  /**
   * A fault hit `job`: record what it is and why each node was or was not blamed, cordon the
   * blamed nodes (node evidence only), stop the gang, and either schedule the recovery (after
   * the restart policy's backoff; in place when no node is blamed) or fail the job.
   */
  async #jobFault(job: Job, f: Finding): Promise<void> {
    const now = this.#now();
    const rt = this.#runtime(job);
    // Exits of this attempt still settling belong to this fault now.
    this.#pendingExits.delete(`${job.id}:${job.attempt}`);
    const faultData = {
      cause: f.cause,
      message: f.message,
      classification: f.classification,
      blame: f.blame,
    };
    if (job.state === 'recovering' && rt.recovery !== null) {
      for (const id of f.blamedNodeIds) {
        if (rt.recovery.failedNodeIds.has(id)) continue;
        rt.recovery.failedNodeIds.add(id);
        // Another fault while the job recovers: that node is replaced too, and kept free.
        const fault: NewEvent = {
          kind: 'fault-detected',
          nodeId: id,
          jobId: job.id,
          data: faultData,
        };
        const node = await this.#o.store.getNode(id);
        if (node !== null && node.state === 'ready')
          await this.#updateNode(node, { state: 'cordoned' }, [
            fault,
            { kind: 'node-cordoned', nodeId: id, data: { reason: f.message, by: 'fault' } },
          ]);
        else await this.#emit([fault]);
      }
      return;
    }
    this.#o.metrics.faultsTotal.inc({ cause: f.cause });
    this.#o.metrics.detectionSeconds.observe(
      { cause: f.cause },
      Math.max(0, now - f.lastSignMs) / 1000,
    );
    if (f.classification === 'node')
      for (const id of f.blamedNodeIds) {
        const node = await this.#o.store.getNode(id);
        if (node !== null && node.state === 'ready')
          await this.#updateNode(node, { state: 'cordoned' }, [
            { kind: 'node-cordoned', nodeId: id, data: { reason: f.message, by: 'fault' } },
          ]);
      }
    const restarts = job.restarts + 1;
    // The restart budget and the backoff count the restarts since the job last made progress
    // (restart.reset 'progress', the default), so a month of unrelated faults neither ends the
    // job nor stretches every recovery to the 60 s cap; 'never' counts every restart.
    const withoutProgress =
      job.spec.restart.reset === 'never'
        ? restarts
        : (await this.#restartsWithoutProgress(job.id)) + 1;
    const placement = job.placement ?? [];
    for (const id of nodesOf(placement))
      this.#o.outbox.push(id, { kind: 'kill', jobId: job.id, attempt: job.attempt });
    const rankField = f.rank === undefined ? {} : { rank: f.rank };
    const events: NewEvent[] =
      f.classification === 'node' && f.blamedNodeIds.length > 0
        ? f.blamedNodeIds.map((id) => ({
            kind: 'fault-detected' as const,
            jobId: job.id,
            nodeId: id,
            attempt: job.attempt,
            data: faultData,
          }))
        : [
            {
              kind: 'fault-detected' as const,
              jobId: job.id,
              attempt: job.attempt,
              ...rankField,
              data: faultData,
            },
          ];
    // The same application failure again, at the same step, after a restore: a bug that every
    // restart will hit again. Restarting further only burns the policy's restarts.
    const previous = this.#appFaults.get(job.id);
    if (f.fingerprint !== undefined) this.#appFaults.set(job.id, f.fingerprint);
    else this.#appFaults.delete(job.id);
    let reason: string | null = null;
    if (
      f.classification === 'application' &&
      f.fingerprint !== undefined &&
      previous === f.fingerprint &&
      rt.restoredStep !== null
    )
      reason = `${f.message}; it failed the same way (same exit, same last error line, same step) after restoring step ${rt.restoredStep}: a deterministic failure, not restarted again`;
    else if (withoutProgress > job.spec.restart.maxRestarts)
      reason = `${f.message}; the restart policy allows ${job.spec.restart.maxRestarts} restart${job.spec.restart.maxRestarts === 1 ? '' : 's'}${job.spec.restart.reset === 'never' ? '' : ' in a row without progress'}`;
    if (reason !== null) {
      await this.#updateJob(job, { state: 'failed', reason, endedAt: now }, [
        ...events,
        { kind: 'job-failed', jobId: job.id, attempt: job.attempt, data: { reason } },
      ]);
      this.#jobs.delete(job.id);
      this.#appFaults.delete(job.id);
      return;
    }
    const backoffSeconds = Math.min(
      60,
      job.spec.restart.backoffSeconds * 2 ** (withoutProgress - 1),
    );
    rt.recovery = {
      failedNodeIds: new Set(f.classification === 'node' ? f.blamedNodeIds : []),
      detectedAtMs: now,
      notBeforeMs: now + backoffSeconds * 1000,
    };
    rt.recoveringSinceMs = now;
    const inPlace = f.classification !== 'node' || f.blamedNodeIds.length === 0;
    await this.#updateJob(job, { state: 'recovering', restarts, reason: f.message }, [
      ...events,
      {
        kind: 'job-restarting',
        jobId: job.id,
        attempt: job.attempt,
        data: { reason: f.message, restarts, withoutProgress, backoffSeconds, inPlace },
      },
    ]);
  }

  /**
   * How many fault restarts of `jobId` came one after another without progress, read from the
   * event log (so a restarted control plane counts the same). An attempt made progress when,
   * after it resumed (`job-resumed`), a checkpoint of a step past the one it restored was
   * committed; late commits of older steps by the previous attempt's daemons do not count.
   * A straggler replacement (`job-restarting` with `restarts` unchanged) is not a fault.
   */
  async #restartsWithoutProgress(jobId: string): Promise<number> {
    const events = await this.#o.store.listEvents({
      jobId,
      kinds: ['job-restarting', 'job-restored', 'job-resumed'],
    });
    const restarting = events.filter((e) => e.kind === 'job-restarting');
    let count = 0;
    for (let k = restarting.length - 1; k >= 0; k -= 1) {
      const from = restarting[k]?.id ?? 0;
      const to = restarting[k + 1]?.id ?? Number.POSITIVE_INFINITY;
      const within = events.filter((e) => e.id > from && e.id < to);
      const resumed = within.find((e) => e.kind === 'job-resumed');
      if (resumed !== undefined) {
        const restoredStep = Math.max(
          -1,
          ...within.map((e) => (e.kind === 'job-restored' ? e.data.step : -1)),
        );
        const commits = await this.#o.store.listEvents({
          jobId,
          kinds: ['checkpoint-committed'],
          afterId: resumed.id,
          limit: 64,
        });
        if (
          commits.some(
            (c) => c.id < to && c.kind === 'checkpoint-committed' && c.data.step > restoredStep,
          )
        )
          break;
      }
      const restarts = (restarting[k]?.data as { restarts?: number }).restarts ?? 0;
      const before = (restarting[k - 1]?.data as { restarts?: number } | undefined)?.restarts ?? 0;
      if (restarts > before) count += 1;
    }
    return count;
  }

  /** One pass of the control loop; the server calls it a few times a second. */
  async tick(): Promise<void> {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      await this.#blameExits();
      await this.#detectSilentNodes();
      await this.#detectHangs();
      await this.#recover();
      await this.#schedule();
      await this.#refreshGauges();
      await this.#flushHeartbeats();
    } finally {
      this.#ticking = false;
    }
  }

  /**
   * Stores the heartbeats waiting in memory, all in one transaction: every 10 s for their
   * times (what `cube nodes` shows), at once when a node's health changed.
   */
  async #flushHeartbeats(): Promise<void> {
    if (this.#heartbeatsToStore.size === 0) return;
    const now = this.#now();
    if (!this.#heartbeatsDraining && now - this.#heartbeatsStoredMs >= 10_000) {
      this.#heartbeatsDraining = true;
      this.#heartbeatsStoredMs = now;
    }
    if (!this.#heartbeatsDraining && this.#healthChanged.size === 0) return;
    const nodes = new Set((await this.#o.store.listNodes()).map((n) => n.id));
    // A changed health goes out at once; times only when due, at most 1,000 nodes per tick, so
    // no single write holds the loop up for long.
    const records: { nodeId: string; at: number; health?: Node['health'] }[] = [];
    let batched = 0;
    for (const [nodeId, h] of this.#heartbeatsToStore) {
      const urgent = this.#healthChanged.has(nodeId);
      if (!nodes.has(nodeId)) this.#heartbeatsToStore.delete(nodeId);
      else if (urgent || (this.#heartbeatsDraining && batched < 1000)) {
        if (!urgent) batched += 1;
        records.push(h.withHealth ? { nodeId, at: h.at, health: h.health } : { nodeId, at: h.at });
        this.#heartbeatsToStore.delete(nodeId);
      }
    }
    this.#healthChanged.clear();
    if (batched < 1000) this.#heartbeatsDraining = false;
    await this.#o.store.recordHeartbeats(records);
  }

  #noteHeartbeat(nodeId: string, at: number, health: Node['health']): void {
    const signature = healthSignature(health);
    const known = this.#healthSignatures.get(nodeId);
    this.#healthSignatures.set(nodeId, signature);
    // The first health seen after a (re)start goes out with the next batch; a change at once.
    if (known !== undefined && known !== signature) this.#healthChanged.add(nodeId);
    const pending = this.#heartbeatsToStore.get(nodeId);
    this.#heartbeatsToStore.set(nodeId, {
      at,
      health,
      withHealth: known !== signature || pending?.withHealth === true,
    });
  }

  /** Nodes of a placement that have been silent for more than 2.5 heartbeat intervals. */
  #silentNodes(nodeIds: readonly string[], now: number): string[] {
    const limit = 2.5 * (this.#o.heartbeatIntervalMs ?? 1000);
    return nodeIds.filter((id) => now - (this.#lastSeen.get(id) ?? this.#startedMs) > limit);
  }

  /** The last non-empty line a rank wrote to its log (as the agent forwarded it), or null. */
  async #lastLogLine(jobId: string, attempt: number, rank: number): Promise<string | null> {
    try {
      const file = await open(rankLogPath(this.#o.dataDir, jobId, attempt, rank), 'r');
      try {
        const { size } = await file.stat();
        const length = Math.min(size, 8192);
        const buffer = Buffer.alloc(length);
        await file.read(buffer, 0, length, size - length);
        const lines = buffer
          .toString('utf8')
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l !== '');
        const last = lines.at(-1);
        return last === undefined ? null : last.slice(0, 300);
      } finally {
        await file.close();
      }
    } catch {
      return null;
    }
  }

  /**
   * Judges the non-zero exits whose settle window has passed. Blame rests on node evidence,
   * never on which rank exited first: when a node dies, its peers' ranks often exit first
   * (their collective lost a member) while the dead node is still within its heartbeat
   * interval. A node of the job that is late with its heartbeat is waited for until it is
   * either silent (blamed) or heard again; nodes that show no evidence are never blamed, and
   * the exit is then the application's own: the gang restarts in place.
   */
  async #blameExits(): Promise<void> {
    const now = this.#now();
    const settleMs = this.#o.exitSettleMs ?? 1500;
    const intervalMs = this.#o.heartbeatIntervalMs ?? 1000;
    for (const [key, pending] of this.#pendingExits) {
      const first = pending.exits[0];
      if (first === undefined) {
        this.#pendingExits.delete(key);
        continue;
      }
      if (now - first.atMs < settleMs) continue;
      const job = await this.#o.store.getJob(pending.jobId);
      if (
        job === null ||
        job.attempt !== pending.attempt ||
        (job.state !== 'running' && job.state !== 'scheduled')
      ) {
        // An older attempt's exit (its job was already recovered or ended): it faults nothing.
        this.#pendingExits.delete(key);
        continue;
      }
      const ids = nodesOf(job.placement ?? []);
      const evidence = await this.#evidence(ids, now);
      const suspects = ids.filter((id) => (evidence.get(id) ?? []).length > 0);
      const late = ids.filter(
        (id) => now - (this.#lastSeen.get(id) ?? this.#startedMs) > 1.5 * intervalMs,
      );
      if (
        suspects.length === 0 &&
        late.length > 0 &&
        now - first.atMs < settleMs + 2.5 * intervalMs
      )
        continue;
      if (suspects.length > 0) {
        const names = await this.#names(suspects);
        const silent = suspects.some((id) =>
          (evidence.get(id) ?? []).some((r) => !r.startsWith('probe') && !r.startsWith('device')),
        );
        const what = suspects
          .map((id) => `${names.get(id) ?? id} (${(evidence.get(id) ?? []).join('; ')})`)
          .join(', ');
        await this.#jobFault(
          job,
          await this.#nodeFinding(job, suspects, {
            cause: silent
              ? 'heartbeat-timeout'
              : suspects.some((id) => (evidence.get(id) ?? []).some((r) => r.startsWith('probe')))
                ? 'probe-failed'
                : 'device-failed',
            message: `${first.message}, and ${what}: the fault is there`,
            why: (id) =>
              `${(evidence.get(id) ?? []).join('; ')}: node evidence, while the exits elsewhere followed it`,
            lastSignMs: Math.min(...suspects.map((id) => this.#lastSeen.get(id) ?? now)),
          }),
        );
        continue;
      }
      await this.#jobFault(job, await this.#applicationFinding(job, pending.exits));
    }
  }

  /** Non-zero exits on nodes that show no node evidence: the program's own failure. */
  async #applicationFinding(job: Job, exits: readonly PendingExit[]): Promise<Finding> {
    const first = exits[0] as PendingExit;
    const lastLine = await this.#lastLogLine(job.id, job.attempt, first.rank);
    const ids = nodesOf(job.placement ?? []);
    const names = await this.#names(ids);
    const exitText = (e: PendingExit): string =>
      `rank ${e.rank} exited ${e.signal === null ? `with code ${e.exitCode}` : `by ${e.signal}`}${e.step === null ? '' : ` at step ${e.step}`}`;
    const blame = ids.map((id): Blame => {
      const here = exits.filter((e) => e.nodeId === id);
      return {
        nodeId: id,
        node: names.get(id) ?? id,
        blamed: false,
        why: `${here.length > 0 ? `${here.map(exitText).join(', ')}; ` : ''}heartbeats on time, probes passing, devices healthy: no node evidence`,
      };
    });
    return {
      cause: 'rank-exit',
      classification: 'application',
      blamedNodeIds: [],
      message: `${first.message}${first.step === null ? '' : ` at step ${first.step}`}${lastLine === null ? '' : ` (last line: ${lastLine})`}`,
      lastSignMs: first.lastSignMs,
      blame,
      rank: first.rank,
      fingerprint: JSON.stringify([first.exitCode, first.signal, first.step, lastLine]),
    };
  }

  /** True when the node's newest `node-down` event says it was cordoned when it went down. */
  async #cordonedWhenDown(nodeId: string): Promise<boolean> {
    const downs = await this.#o.store.listEvents({ nodeId, kinds: ['node-down'] });
    return (downs.at(-1)?.data as { wasCordoned?: unknown } | undefined)?.wasCordoned === true;
  }

  /** A node's heartbeat timeout: the control plane's, or shorter where a job on it asks. */
  #heartbeatTimeoutMs(nodeId: string, active: readonly Job[]): number {
    return Math.min(
      this.#o.heartbeatTimeoutMs ?? 5000,
      ...active
        .filter((j) => j.placement?.some((r) => r.nodeId === nodeId) === true)
        .map((j) => j.spec.faults.heartbeatTimeoutSeconds * 1000),
    );
  }

  /** A node's last sign of life; after a control-plane restart, a full timeout from then. */
  #lastSignMs(node: Node): number {
    return this.#lastSeen.get(node.id) ?? Math.max(this.#startedMs, node.lastHeartbeatAt ?? 0);
  }

  /**
   * Each node's last sign of life as this process saw it (the stored `lastHeartbeatAt` is
   * written only every 10 s) and the silences it judges it by: suspect after 2.5 heartbeat
   * intervals, `down` after its timeout. The dashboard's node list shows these, not its own
   * rule. `now` is this process's clock, for clients whose clock differs.
   */
  async liveness(): Promise<{
    readonly now: number;
    readonly suspectAfterMs: number;
    readonly nodes: { nodeId: string; lastSeenAt: number; timeoutMs: number }[];
  }> {
    const active = await this.#o.store.listJobs({ states: ['scheduled', 'running', 'recovering'] });
    const nodes = (await this.#o.store.listNodes()).filter((n) => n.state !== 'left');
    return {
      now: this.#now(),
      suspectAfterMs: 2.5 * (this.#o.heartbeatIntervalMs ?? 1000),
      nodes: nodes.map((n) => ({
        nodeId: n.id,
        lastSeenAt: this.#lastSignMs(n),
        timeoutMs: this.#heartbeatTimeoutMs(n.id, active),
      })),
    };
  }

  async #detectSilentNodes(): Promise<void> {
    const now = this.#now();
    const active = await this.#o.store.listJobs({ states: ['scheduled', 'running', 'recovering'] });
    const down: { id: string; why: string; last: number }[] = [];
    for (const node of await this.#o.store.listNodes()) {
      if (node.state !== 'ready' && node.state !== 'cordoned') continue;
      const timeoutMs = this.#heartbeatTimeoutMs(node.id, active);
      const last = this.#lastSignMs(node);
      if (now - last <= timeoutMs) continue;
      await this.#updateNode(node, { state: 'down' }, [
        {
          kind: 'node-down',
          nodeId: node.id,
          data: {
            reason: `no heartbeat for ${Math.round((now - last) / 1000)} s (timeout ${timeoutMs / 1000} s)`,
            // Read back when its heartbeats resume, so that going silent never lifts a cordon.
            wasCordoned: node.state === 'cordoned',
          },
        },
      ]);
      down.push({
        id: node.id,
        why: `${node.name} missed heartbeats for ${Math.round((now - last) / 1000)} s (timeout ${timeoutMs / 1000} s)`,
        last,
      });
    }
    // Nodes lost in the same pass (a double fault) are one fault of each job they ran, blamed
    // together: one restart replaces them all.
    for (const job of active) {
      const lost = down.filter((d) => job.placement?.some((r) => r.nodeId === d.id) === true);
      if (lost.length === 0) continue;
      const fresh = await this.#o.store.getJob(job.id);
      if (fresh === null) continue;
      const whyOf = new Map(lost.map((d) => [d.id, d.why]));
      await this.#jobFault(
        fresh,
        await this.#nodeFinding(
          fresh,
          lost.map((d) => d.id),
          {
            cause: 'heartbeat-timeout',
            message: lost.map((d) => d.why.replace(/ \(timeout.*\)$/, '')).join('; '),
            why: (id) => `${whyOf.get(id) ?? 'missed heartbeats'}: node evidence`,
            lastSignMs: Math.min(...lost.map((d) => d.last)),
          },
        ),
      );
    }
  }

  /**
   * Ranks that stop making progress. When one rank hangs, the others soon block in their
   * collectives and stop too, so "which rank went quiet first by the clock" is noise: the hung
   * rank is the one behind every other (an older step, or none at all). When no rank is
   * behind, the evidence singles out nothing: the fault is `unknown` and the gang restarts in
   * place, no node cordoned.
   */
  async #detectHangs(): Promise<void> {
    const now = this.#now();
    for (const job of await this.#o.store.listJobs({ states: ['running'] })) {
      const rt = this.#runtime(job);
      const hangMs = job.spec.faults.hangTimeoutSeconds * 1000;
      const running = [...rt.ranks.entries()].filter(([, r]) => r.state === 'running');
      const quiet = running.filter(([, r]) => now - r.lastSignMs > hangMs);
      if (quiet.length === 0) continue;
      const stepOf = (r: RankRuntime): number => r.step ?? -1;
      const lowest = Math.min(...running.map(([, r]) => stepOf(r)));
      const behind = running.filter(([, r]) => stepOf(r) === lowest);
      const hung = behind.length < running.length ? behind : [];
      const quietSince = Math.min(...quiet.map(([, r]) => r.lastSignMs));
      const seconds = Math.round((now - quietSince) / 1000);
      await this.#hangFault(job, {
        hung: hung.map(([rank, r]) => ({ rank, step: r.step })),
        ahead: Math.max(...running.map(([, r]) => stepOf(r))),
        message:
          hung.length > 0
            ? `rank ${hung.map(([rank]) => rank).join(', ')} made no progress for ${seconds} s (hang timeout ${job.spec.faults.hangTimeoutSeconds} s), behind every other rank`
            : `ranks made no progress for ${seconds} s (hang timeout ${job.spec.faults.hangTimeoutSeconds} s), all stopped at step ${lowest < 0 ? 'none' : lowest}: no rank is behind the others`,
        lastSignMs: quietSince,
      });
    }
    // A launch whose ranks never report progress: they hang as surely as ranks that stop.
    for (const job of await this.#o.store.listJobs({ states: ['scheduled'] })) {
      const rt = this.#runtime(job);
      if (now - rt.launchedAtMs < job.spec.faults.hangTimeoutSeconds * 1000) continue;
      const placement = job.placement ?? [];
      const missing = placement.filter((p) => (rt.ranks.get(p.rank)?.step ?? null) === null);
      if (missing.length === 0) continue;
      const hung = missing.length < placement.length ? missing : [];
      await this.#hangFault(job, {
        hung: hung.map((p) => ({ rank: p.rank, step: null })),
        ahead: Math.max(...[...rt.ranks.values()].map((r) => r.step ?? -1), -1),
        message:
          hung.length > 0
            ? `rank ${hung.map((p) => p.rank).join(', ')} reported no progress within ${job.spec.faults.hangTimeoutSeconds} s of its launch, while the others did`
            : `every rank reported no progress within ${job.spec.faults.hangTimeoutSeconds} s of its launch`,
        lastSignMs: rt.launchedAtMs,
      });
    }
  }

  /** A hang: blamed on the nodes of the ranks behind the others, else `unknown` and in place. */
  async #hangFault(
    job: Job,
    h: {
      hung: readonly { rank: number; step: number | null }[];
      ahead: number;
      message: string;
      lastSignMs: number;
    },
  ): Promise<void> {
    const placement = job.placement ?? [];
    const nodeOf = (rank: number): string | undefined =>
      placement.find((p) => p.rank === rank)?.nodeId;
    const blamedIds = [
      ...new Set(h.hung.map((x) => nodeOf(x.rank)).filter((id): id is string => id !== undefined)),
    ];
    const behindText = (id: string): string =>
      h.hung
        .filter((x) => nodeOf(x.rank) === id)
        .map(
          (x) =>
            `rank ${x.rank} is at step ${x.step ?? 'none'} while other ranks reached step ${h.ahead < 0 ? 'none' : h.ahead}: it is the hung one`,
        )
        .join('; ');
    if (blamedIds.length > 0) {
      await this.#jobFault(
        job,
        await this.#nodeFinding(job, blamedIds, {
          cause: 'hang',
          message: h.message,
          why: behindText,
          lastSignMs: h.lastSignMs,
        }),
      );
      return;
    }
    const ids = nodesOf(placement);
    const names = await this.#names(ids);
    await this.#jobFault(job, {
      cause: 'hang',
      classification: 'unknown',
      blamedNodeIds: [],
      message: h.message,
      lastSignMs: h.lastSignMs,
      blame: ids.map((id) => ({
        nodeId: id,
        node: names.get(id) ?? id,
        blamed: false,
        why: 'its ranks stopped with every other rank: the evidence singles out no rank, so no node is cordoned',
      })),
    });
  }

  async #allocations(): Promise<Allocation[]> {
    const jobs = await this.#o.store.listJobs({ states: ['scheduled', 'running', 'recovering'] });
    return jobs
      .filter((j) => j.placement !== null)
      .map((j) => ({ jobId: j.id, nodeIds: nodesOf(j.placement ?? []) }));
  }

  async #recover(): Promise<void> {
    const now = this.#now();
    for (const job of await this.#o.store.listJobs({ states: ['recovering'] })) {
      const rt = this.#runtime(job);
      if (rt.recovery === null) {
        // A control-plane restart lost the in-memory plan: rebuild it from the nodes' states.
        const bad = nodesOf(job.placement ?? []);
        const nodes = await Promise.all(bad.map((id) => this.#o.store.getNode(id)));
        rt.recovery = {
          failedNodeIds: new Set(
            nodes.filter((n) => n !== null && n.state !== 'ready').map((n) => (n as Node).id),
          ),
          detectedAtMs: now,
          notBeforeMs: now,
        };
      }
      if (now < rt.recovery.notBeforeMs) continue;
      let placement = [...(job.placement ?? [])];
      const nodes = await this.#o.store.listNodes();
      const events: NewEvent[] = [];
      // What this attempt changes, for its placement explanation (the first attempt's lines
      // alone would describe a placement that no longer holds).
      const changes: string[] = [];
      let waitReason: string | null = null;
      for (const failedNodeId of rt.recovery.failedNodeIds) {
        if (!placement.some((p) => p.nodeId === failedNodeId)) continue;
        const allocations = (await this.#allocations()).filter((a) => a.jobId !== job.id);
        allocations.push({ jobId: job.id, nodeIds: nodesOf(placement) });
        const replacement = replaceNode({
          job: { id: job.id, spec: job.spec },
          placement: { ranks: placement },
          failedNodeId,
          nodes: nodes.map(schedulerNode),
          allocations,
        });
        if (replacement.kind === 'waiting') {
          waitReason = replacement.waitReason;
          break;
        }
        placement = placement.map((p) =>
          p.nodeId === failedNodeId ? { ...p, nodeId: replacement.nodeId } : p,
        );
        changes.push(replacement.explanation);
        if (replacement.source === 'spare') {
          const spare = nodes.find((n) => n.id === replacement.nodeId);
          if (spare !== undefined)
            await this.#updateNode(spare, { role: 'worker' }, [
              {
                kind: 'spare-taken',
                nodeId: spare.id,
                jobId: job.id,
                data: { replacesNodeId: failedNodeId, explanation: replacement.explanation },
              },
            ]);
        } else
          events.push({
            kind: 'job-scheduled',
            jobId: job.id,
            nodeId: replacement.nodeId,
            data: { explanation: [replacement.explanation] },
          });
      }
      if (waitReason !== null) {
        if (job.reason !== waitReason)
          await this.#updateJob(job, { reason: waitReason }, [
            { kind: 'job-waiting', jobId: job.id, data: { reason: waitReason } },
          ]);
        continue;
      }
      const silent = this.#silentNodes(nodesOf(placement), now);
      if (silent.length > 0) {
        // A node of the new placement stopped heartbeating: replace it too before relaunching.
        for (const id of silent) {
          rt.recovery.failedNodeIds.add(id);
          const n = nodes.find((x) => x.id === id);
          if (n !== undefined && n.state === 'ready')
            await this.#updateNode(n, { state: 'cordoned' }, [
              {
                kind: 'node-cordoned',
                nodeId: id,
                data: { reason: 'silent while its job recovered', by: 'fault' },
              },
            ]);
        }
        continue;
      }
      const attempt = job.attempt + 1;
      this.#o.outbox.dropJob(job.id, attempt);
      const placementExplanation = [
        ...(changes.length === 0
          ? [`attempt ${attempt}: restarts on the nodes of attempt ${job.attempt} (none was lost)`]
          : changes.map((c) => `attempt ${attempt}: ${c}`)),
        ...job.placementExplanation,
      ];
      const relaunched = await this.#updateJob(
        job,
        { state: 'scheduled', attempt, placement, placementExplanation, reason: null },
        [...events, { kind: 'job-scheduled', jobId: job.id, attempt, data: { placement } }],
      );
      const recoveringSince = rt.recoveringSinceMs;
      this.#jobs.delete(job.id);
      const fresh = this.#runtime(relaunched);
      fresh.recoveringSinceMs = recoveringSince;
      await this.#launch(relaunched, nodes);
    }
  }

  async #schedule(): Promise<void> {
    const queued = await this.#o.store.listJobs({ states: ['queued'] });
    if (queued.length === 0) return;
    const nodes = await this.#o.store.listNodes();
    const result = scheduleQueue({
      nodes: nodes.map(schedulerNode),
      jobs: queued.map((j) => ({
        id: j.id,
        priority: j.spec.priority,
        submittedAt: j.createdAt,
        spec: j.spec,
      })),
      allocations: await this.#allocations(),
      options: { reserveSpares: true },
    });
    for (const { jobId, placement } of result.placements) {
      const job = queued.find((j) => j.id === jobId);
      if (job === undefined) continue;
      const ranks = [...placement.ranks].sort((a, b) => a.rank - b.rank);
      const scheduled = await this.#o.store.updateJob(
        job.id,
        {
          state: 'scheduled',
          placement: ranks,
          placementExplanation: [...placement.explanation],
          reason: null,
        },
        [
          {
            kind: 'job-scheduled',
            jobId: job.id,
            attempt: job.attempt,
            data: { placement: ranks, explanation: [...placement.explanation] },
          },
        ],
      );
      await this.#launch(scheduled, nodes);
    }
    for (const { jobId, reason } of result.waiting) {
      const job = queued.find((j) => j.id === jobId);
      if (job !== undefined && job.reason !== reason)
        await this.#updateJob(job, { reason }, [{ kind: 'job-waiting', jobId, data: { reason } }]);
    }
  }

  /** Turns a job's placement into one launch command per node (delivered with its next heartbeat). */
  async #launch(job: Job, nodes: readonly Node[]): Promise<void> {
    const placement = job.placement;
    if (placement === null)
      throw new CubeError('INTERNAL', `job ${job.id} has no placement to launch`);
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const rank0 = byId.get(placement.find((p) => p.rank === 0)?.nodeId ?? '');
    const endpoint = (id: string | null): PeerEndpoint | null => {
      const n = id === null ? undefined : byId.get(id);
      return n === undefined || n.ckptPeerPort === null
        ? null
        : { node: n.name, host: n.host ?? '127.0.0.1', port: n.ckptPeerPort };
    };
    const peers = replicaPeersFor({ ranks: placement }, nodes.map(schedulerNode));
    const jobNodes = nodesOf(placement);
    const allPeers = jobNodes
      .map((id) => endpoint(id))
      .filter((p): p is PeerEndpoint => p !== null);
    const masterPort = 20_000 + Math.floor(Math.random() * 20_000);
    // Fresh checkpoint-peer keys for this attempt: each node may write the replicas of the
    // nodes it is replica peer of and read those of the ranks it hosts now (peer-auth.ts).
    const nameOf = (id: string): string => byId.get(id)?.name ?? id;
    const peerPlacement = {
      job: job.id,
      attempt: job.attempt,
      nodes: jobNodes.map((id) => {
        const to = peers.find((p) => p.nodeId === id)?.peerNodeId ?? null;
        return {
          node: nameOf(id),
          ranks: placement.filter((p) => p.nodeId === id).map((p) => p.rank),
          replicaPeer: to === null ? null : nameOf(to),
        };
      }),
    };
    const events: NewEvent[] = [];
    for (const nodeId of jobNodes) {
      const ranks = placement
        .filter((p) => p.nodeId === nodeId)
        .map((p) => ({ rank: p.rank, localRank: p.localRank }));
      const peer = peers.find((p) => p.nodeId === nodeId)?.peerNodeId ?? null;
      const self = byId.get(nodeId);
      const command: NodeCommand = {
        kind: 'launch',
        jobId: job.id,
        attempt: job.attempt,
        ranks,
        worldSize: worldSizeOf(job.spec),
        localWorldSize: job.spec.ranks.devicesPerNode,
        masterAddr: rank0?.host ?? '127.0.0.1',
        masterPort,
        command: job.spec.command,
        workingDir: job.spec.workingDir,
        env: job.spec.env,
        checkpoint: {
          everySteps: job.spec.checkpoint.everySteps,
          l3Path: job.spec.checkpoint.l3Path ?? join(this.#o.dataDir, 'l3'),
          l3Every: job.spec.checkpoint.l3Every,
          keep: job.spec.checkpoint.keep,
          replicaPeer: endpoint(peer),
          peers: allPeers.filter((p) => p.node !== self?.name),
          peerAccess: peerAccessFor(
            this.#o.peerMasterKey ?? processPeerMasterKey,
            peerPlacement,
            nameOf(nodeId),
          ),
        },
      };
      this.#o.outbox.push(nodeId, command);
      for (const r of ranks)
        events.push({
          kind: 'rank-launched',
          jobId: job.id,
          nodeId,
          rank: r.rank,
          attempt: job.attempt,
          data: {},
        });
    }
    this.#runtime(job).launchedAtMs = this.#now();
    await this.#emit(events);
  }

  /** Cancels a job: stop its ranks and end it. */
  async cancel(jobId: string): Promise<Job> {
    const job = await this.#o.store.getJob(jobId);
    if (job === null)
      throw new CubeError('UNKNOWN_ID', `no job ${jobId}`, { where: { field: 'id' } });
    if (isTerminalJobState(job.state)) return job;
    for (const id of nodesOf(job.placement ?? []))
      this.#o.outbox.push(id, { kind: 'kill', jobId, attempt: job.attempt });
    this.#jobs.delete(jobId);
    this.#appFaults.delete(jobId);
    return this.#updateJob(
      job,
      { state: 'cancelled', endedAt: this.#now(), reason: 'cancelled by a user' },
      [{ kind: 'job-cancelled', jobId, data: { reason: 'cancelled by a user' } }],
    );
  }

  /** Fault injection (tests, demos): the node's agent carries it out. */
  injectFault(
    nodeId: string,
    fault: 'kill-node' | 'kill-rank' | 'fail-probe',
    target: { jobId?: string; rank?: number } = {},
  ): void {
    this.#o.outbox.push(nodeId, { kind: 'fault', fault, ...target });
  }

  async #refreshGauges(): Promise<void> {
    const m = this.#o.metrics;
    // Counted here, set once per label pair: thousands of nodes, four times a second.
    const counts = new Map<string, { state: Node['state']; role: Node['role']; n: number }>();
    for (const n of await this.#o.store.listNodes()) {
      const key = `${n.state}/${n.role}`;
      const c = counts.get(key);
      if (c === undefined) counts.set(key, { state: n.state, role: n.role, n: 1 });
      else c.n += 1;
    }
    m.nodesByState.reset();
    for (const c of counts.values()) m.nodesByState.set({ state: c.state, role: c.role }, c.n);
    m.jobsByState.reset();
    for (const j of await this.#o.store.listJobs()) m.jobsByState.inc({ state: j.state });
  }
}
