import { pino } from 'pino';
import { CubeError } from '../../core/index.ts';
import { tryCommit } from '../commit.ts';
import { asStore } from '../fs-store.ts';
import { fileKey } from '../layout.ts';
import { persistsToL3 } from '../l3-cadence.ts';
import { LeaseRegistry } from '../leases.ts';
import { isFenced } from '../fence.ts';
import { persistStep } from '../persist.ts';
import { collectGarbage, defaultKeep } from '../retention.ts';
import { isCommitted, readRecord, scanJob } from '../scan.ts';
import type { Level, ShardRecord } from '../schemas.ts';
import type { DaemonLog } from './daemon-log.ts';
import { createPacer } from './pacer.ts';
import type { PeerAccess } from './peer-auth.ts';
import type { PeerTls } from './peer-tls.ts';
import { PeerClient, type PeerAddress, type PeerClientOptions } from './peer-client.ts';
import { pruneAbandonedSteps, type PruneRequest, type PrunedStep } from './prune.ts';
import { PeerServer } from './peer-server.ts';

export interface CheckpointDaemonOptions {
  readonly node: string;
  /** This node's L1 level root (tmpfs). */
  readonly l1Root: string;
  /** Where this node keeps replicas pushed by peers. */
  readonly l2Root: string;
  /** The shared durable level root; absent = no L3. */
  readonly l3Root?: string;
  /** Peer TCP listener (port 0 picks one). */
  readonly listen: { readonly host: string; readonly port: number };
  /** The node this daemon pushes its L1 shards to (from the topology: another server). */
  readonly replicaPeer?: PeerAddress;
  /** Every peer a restore may read replicas from (the replica peer is added). */
  readonly peers?: readonly PeerAddress[];
  /** Cap on replication traffic, bytes per second (default: none). */
  readonly replicationBytesPerSecond?: number;
  /** How long a slot lease waits for readers before cancelling their work (default 30 s). */
  readonly leaseTimeoutMs?: number;
  readonly defaultL3Every?: number;
  readonly keep?: Partial<Record<Level, number>>;
  readonly log?: DaemonLog;
  /** Called after each commit this daemon makes: L1 (local ranks), L2 (replicated), L3 (persisted). */
  readonly onCommit?: (commit: { job: string; level: Level; step: number }) => void;
  /** Peer access per job to start with (`cube ckpt daemon --peer-access`); see `setPeerAccess`. */
  readonly peerAccess?: Readonly<Record<string, PeerAccess>>;
  /** Peer connection timeouts (tests shorten them). */
  readonly peerTimeouts?: {
    /** An inbound connection must authenticate within this (default 10 s). */
    readonly authMs?: number;
    /** An inbound connection with no traffic for this long is closed (default 60 s). */
    readonly idleMs?: number;
  };
  /** Free bytes L2 keeps after a replica is written (default 64 MiB). */
  readonly l2ReserveBytes?: number;
  /** TLS on the peer port and to peers (peer-tls.ts); absent: plain TCP. */
  readonly tls?: PeerTls;
}

/** What a rank tells its daemon when it registers. */
export interface Registration {
  readonly worldSize: number;
  /** The ranks of this job on this node. */
  readonly localRanks: readonly number[];
  readonly l3Every?: number;
  /**
   * The job's checkpoint interval in steps (CUBE_CKPT_EVERY): with `l3Every` it fixes which
   * steps go to L3 (l3-cadence.ts), the same on every node.
   */
  readonly everySteps?: number;
  readonly keep?: Partial<Record<Level, number>>;
}

/** A recent failure the daemon reports in its status (training goes on). */
export interface DaemonError {
  readonly at: string;
  readonly level: Level;
  readonly step: number;
  readonly message: string;
}

interface WorkItem {
  readonly step: number;
  readonly records: readonly ShardRecord[];
  readonly replicate: boolean;
  readonly persist: boolean;
  readonly abort: AbortController;
  state: 'queued' | 'running' | 'done';
  readonly done: Promise<void>;
  finish: () => void;
}

interface JobState {
  readonly job: string;
  worldSize: number;
  localRanks: Set<number>;
  l3Every: number;
  everySteps: number | null;
  keep: Partial<Record<Level, number>>;
  readonly saved: Map<number, Map<number, ShardRecord>>;
  readonly work: WorkItem[];
  working: boolean;
  readonly writing: Set<string>;
  /** L1 commits in progress: the slot files their manifest will name. */
  readonly committing: Set<{ readonly files: ReadonlySet<string>; readonly done: Promise<void> }>;
  readonly newest: Record<Level, number | null>;
  readonly newestBytes: Record<Level, number | null>;
  readonly errors: DaemonError[];
  readonly dropped: number[];
  /**
   * The two buffers this job's L1 reads (replication, persistence) refill, allocated once: the
   * job's work runs one item at a time, and fresh 8 MiB buffers per shard cost page faults.
   */
  readBuffers: readonly [Buffer, Buffer] | null;
  /**
   * The job's L3 fence refused this node's last persist: its ranks belong to a replaced
   * attempt, so its garbage collection leaves L3 alone (until a rank registers again).
   */
  fenced: boolean;
}

/** Per job, what `GET /v1/status` reports. */
export interface JobStatus {
  readonly job: string;
  readonly worldSize: number;
  readonly localRanks: readonly number[];
  readonly newest: Readonly<Record<Level, number | null>>;
  readonly inFlight: readonly { step: number; state: string }[];
  readonly dropped: readonly number[];
  readonly errors: readonly DaemonError[];
}

/** Why a level's work failed, for `DaemonCounters.failures` (training goes on). */
export const daemonFailureKinds = ['l1-commit', 'replication', 'persist', 'fenced'] as const;
export type DaemonFailureKind = (typeof daemonFailureKinds)[number];

/**
 * What `GET /v1/counters` reports (the agent's `/metrics` serves them): running totals since the
 * daemon started, so `rate()` of bytes over seconds gives throughput, and the queue right now.
 */
export interface DaemonCounters {
  /** Shard bytes pushed to the replica peer, and the seconds spent pushing them (L2). */
  readonly replicatedBytes: number;
  readonly replicationSeconds: number;
  /** Shard bytes copied to durable storage, and the seconds spent copying them (L3). */
  readonly persistedBytes: number;
  readonly persistSeconds: number;
  readonly failures: Readonly<Record<DaemonFailureKind, number>>;
  /** Committed L1 steps waiting for replication or persistence, and those being worked on. */
  readonly queued: number;
  readonly running: number;
  /** Per job: the bytes of this node's shards in its newest checkpoint at each level. */
  readonly jobs: readonly {
    readonly job: string;
    readonly newestBytes: Readonly<Record<Level, number | null>>;
  }[];
}

/** A place a rank's shard of a step can be read from, as the daemon sees it. */
export interface ShardSourceInfo {
  readonly level: Level;
  readonly node: string;
  /** A path this node can read directly; absent for a remote replica (fetch it through the daemon). */
  readonly path?: string;
  readonly bytes: number;
  readonly xxh3: string;
  /** The timeline of the manifest listing it: a restore combines shards of one timeline only. */
  readonly timeline: number;
}

const maxErrors = 20;
/** Bytes per L1 read of replication and persistence (the store's own chunk size). */
const readChunkBytes = 8 * 1024 * 1024;

/**
 * The node's checkpoint daemon: commits L1 once every local rank recorded a step, pushes the
 * shards to the replica peer (L2) under a bandwidth cap, persists every k-th checkpoint (chosen
 * by step: l3-cadence.ts) to durable storage (L3), collects garbage, and answers where a rank's
 * shards can be restored from. Failures of L2 or L3 are logged and reported, never passed to
 * training.
 */
export class CheckpointDaemon {
  readonly #options: CheckpointDaemonOptions;
  readonly #log: DaemonLog;
  readonly #jobs = new Map<string, JobState>();
  readonly #leases = new LeaseRegistry();
  readonly #peerServer: PeerServer;
  #replica: PeerClient | null;
  readonly #peers: Map<string, PeerClient>;
  /** Per-job L3 roots set by the launcher; a job without one uses `options.l3Root`. */
  readonly #l3Roots = new Map<string, string>();
  readonly #pace: (bytes: number) => Promise<void>;
  #address: { host: string; port: number } | null = null;
  /** Per job, this node's peer keys and grants for the job's newest attempt. Never logged. */
  readonly #access = new Map<string, PeerAccess>();
  readonly #totals = {
    replicatedBytes: 0,
    replicationSeconds: 0,
    persistedBytes: 0,
    persistSeconds: 0,
    failures: { 'l1-commit': 0, replication: 0, persist: 0, fenced: 0 } as Record<
      DaemonFailureKind,
      number
    >,
  };

  constructor(options: CheckpointDaemonOptions) {
    this.#options = options;
    this.#log = options.log ?? pino({ name: 'cube-ckpt-daemon', level: 'info' });
    this.#replica = options.replicaPeer === undefined ? null : this.#client(options.replicaPeer);
    this.#peers = new Map();
    for (const peer of [
      ...(options.peers ?? []),
      ...(options.replicaPeer ? [options.replicaPeer] : []),
    ])
      if (peer.node !== options.node && !this.#peers.has(peer.node))
        this.#peers.set(peer.node, this.#client(peer));
    this.#pace = createPacer({ bytesPerSecond: options.replicationBytesPerSecond ?? Infinity });
    this.#peerServer = new PeerServer({
      node: options.node,
      l2Root: options.l2Root,
      readRoots: () => [
        { level: 'L1', root: options.l1Root },
        { level: 'L2', root: options.l2Root },
      ],
      log: this.#log,
      onReplicaCommitted: (job) => void this.#collect(job),
      ...(options.peerTimeouts?.authMs === undefined
        ? {}
        : { authTimeoutMs: options.peerTimeouts.authMs }),
      ...(options.peerTimeouts?.idleMs === undefined
        ? {}
        : { idleTimeoutMs: options.peerTimeouts.idleMs }),
      ...(options.l2ReserveBytes === undefined ? {} : { reserveBytes: options.l2ReserveBytes }),
      ...(options.tls === undefined ? {} : { tls: options.tls }),
    });
    for (const [job, access] of Object.entries(options.peerAccess ?? {}))
      this.setPeerAccess(job, access);
  }

  /**
   * Sets this node's peer keys and grants for `job` (from its launch command): who may write
   * and read which replicas here, and the keys this node dials its peers with. Access of an
   * older attempt of the job is replaced (its connections are closed); an older attempt's
   * access arriving late is ignored.
   */
  setPeerAccess(job: string, access: PeerAccess): void {
    const held = this.#access.get(job);
    if (held !== undefined && access.attempt < held.attempt) return;
    this.#access.set(job, access);
    this.#peerServer.setAccess(job, access);
  }

  #client(peer: PeerAddress): PeerClient {
    const options: PeerClientOptions = {
      self: this.#options.node,
      credential: (job) => {
        const access = this.#access.get(job);
        const key = access?.outgoing.find((o) => o.node === peer.node)?.key;
        return access === undefined || key === undefined ? null : { attempt: access.attempt, key };
      },
      ...(this.#options.tls === undefined ? {} : { tls: this.#options.tls }),
    };
    return new PeerClient(peer, options);
  }

  get node(): string {
    return this.#options.node;
  }

  /** The peer listener's address (after `start`). */
  get address(): { host: string; port: number } {
    if (this.#address === null) throw new CubeError('INTERNAL', 'daemon not started');
    return this.#address;
  }

  async start(): Promise<void> {
    this.#address = await this.#peerServer.listen(
      this.#options.listen.host,
      this.#options.listen.port,
    );
    this.#log.info({ node: this.#options.node, peer: this.#address }, 'checkpoint daemon started');
  }

  /**
   * Replaces the node this daemon pushes its L1 shards to (null: no replication); the new peer
   * is also a restore source. A replication in flight to the old peer fails (reported as an L2
   * error, training goes on).
   */
  setReplicaPeer(peer: PeerAddress | null): void {
    const old = this.#replica?.peer;
    if (
      peer !== null &&
      old?.node === peer.node &&
      old.host === peer.host &&
      old.port === peer.port
    )
      return;
    this.#replica?.close();
    this.#replica = peer === null || peer.node === this.node ? null : this.#client(peer);
    if (peer !== null) this.setPeers([peer]);
  }

  /** Adds or updates the peers a restore may read replicas from (a changed address replaces the old one). */
  setPeers(peers: readonly PeerAddress[]): void {
    for (const peer of peers) {
      if (peer.node === this.node) continue;
      const old = this.#peers.get(peer.node);
      if (old !== undefined && old.peer.host === peer.host && old.peer.port === peer.port) continue;
      old?.close();
      this.#peers.set(peer.node, this.#client(peer));
    }
  }

  /** Sets the durable level root of `job` (the launcher's `l3Path`); undefined: the daemon's default. */
  setL3Root(job: string, root: string | undefined): void {
    if (root === undefined) this.#l3Roots.delete(job);
    else this.#l3Roots.set(job, root);
  }

  async stop(): Promise<void> {
    for (const job of this.#jobs.values()) for (const item of job.work) item.abort.abort();
    this.#replica?.close();
    for (const peer of this.#peers.values()) peer.close();
    await this.#peerServer.close();
  }

  /** A rank announces itself; the last registration of a job wins for its settings. */
  register(job: string, rank: number, registration: Registration): void {
    if (!registration.localRanks.includes(rank))
      throw new CubeError('INVALID_VALUE', `rank ${rank} registers but is not in localRanks`, {
        where: { field: 'localRanks', rank },
      });
    const state = this.#jobs.get(job);
    const l3Every = registration.l3Every ?? this.#options.defaultL3Every ?? 1;
    const everySteps = registration.everySteps ?? null;
    const keep = { ...this.#options.keep, ...registration.keep };
    if (state === undefined)
      this.#jobs.set(job, {
        job,
        worldSize: registration.worldSize,
        localRanks: new Set(registration.localRanks),
        l3Every,
        everySteps,
        keep,
        saved: new Map(),
        work: [],
        working: false,
        writing: new Set(),
        committing: new Set(),
        newest: { L1: null, L2: null, L3: null },
        newestBytes: { L1: null, L2: null, L3: null },
        errors: [],
        dropped: [],
        readBuffers: null,
        fenced: false,
      });
    else {
      state.fenced = false;
      state.worldSize = registration.worldSize;
      state.localRanks = new Set(registration.localRanks);
      state.l3Every = l3Every;
      state.everySteps = everySteps;
      state.keep = keep;
    }
  }

  /**
   * A rank is about to overwrite an L1 slot: wait until no queued or running work reads it,
   * cancelling that work after the lease timeout (the step it served is superseded).
   */
  async leaseSlot(
    job: string,
    rank: number,
    slotFile: string,
    signal?: AbortSignal,
  ): Promise<void> {
    const state = this.#job(job);
    const readers = (): WorkItem[] =>
      state.work.filter(
        (item) => item.state !== 'done' && item.records.some((r) => r.file === slotFile),
      );
    // A commit naming this slot finishes first; the rank then invalidates that step (manifest
    // first) before it overwrites the slot, so no manifest ever names a slot being rewritten.
    await Promise.all(
      [...state.committing].filter((c) => c.files.has(slotFile)).map((c) => c.done),
    );
    const waiting = readers();
    if (waiting.length > 0) {
      const timeoutMs = this.#options.leaseTimeoutMs ?? 30_000;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        Promise.all(waiting.map((w) => w.done)).then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), timeoutMs);
          signal?.addEventListener('abort', () => {
            clearTimeout(timer);
            resolve(true);
          });
        }),
      ]);
      // A pending timer would keep a host process (the agent) alive for the whole timeout.
      clearTimeout(timer);
      if (timedOut) {
        for (const item of readers()) {
          item.abort.abort();
          if (!state.dropped.includes(item.step)) state.dropped.push(item.step);
          this.#log.warn(
            { job, step: item.step, rank, slot: slotFile },
            'replication/persistence of a step cancelled: its slot is being reused',
          );
        }
        await Promise.all(readers().map((w) => w.done));
      }
    }
    state.writing.add(`${rank}:${slotFile}`);
  }

  /** A rank's shard is durable at L1: commit the node's step when complete, then replicate and persist. */
  async saved(record: ShardRecord): Promise<void> {
    const state = this.#job(record.job);
    state.writing.delete(`${record.rank}:${record.file}`);
    if (!state.localRanks.has(record.rank))
      throw new CubeError('INVALID_VALUE', `rank ${record.rank} is not local to ${this.node}`, {
        where: { rank: record.rank, node: this.node },
      });
    const byRank = state.saved.get(record.step) ?? new Map<number, ShardRecord>();
    state.saved.set(record.step, byRank);
    byRank.set(record.rank, record);
    if (![...state.localRanks].every((r) => byRank.has(r))) return;
    state.saved.delete(record.step);
    for (const old of state.saved.keys()) if (old < record.step) state.saved.delete(old);
    const expectRanks = [...state.localRanks].sort((a, b) => a - b);
    const records = expectRanks.map((r) => byRank.get(r) as ShardRecord);
    const rewritten = records.filter((r) => state.writing.has(`${r.rank}:${r.file}`));
    if (rewritten.length > 0) {
      // A rank that ran ahead already reuses its slot of this step: the step is superseded.
      this.#log.warn(
        { job: record.job, step: record.step, ranks: rewritten.map((r) => r.rank) },
        'L1 commit skipped: a slot of the step is already being rewritten',
      );
      return;
    }
    let finished = (): void => undefined;
    const inFlight = {
      files: new Set(records.map((r) => r.file)),
      done: new Promise<void>((resolve) => (finished = resolve)),
    };
    state.committing.add(inFlight);
    let commit: Awaited<ReturnType<typeof tryCommit>>;
    try {
      commit = await tryCommit(this.#options.l1Root, record.job, record.step, {
        level: 'L1',
        expectRanks,
      });
    } finally {
      state.committing.delete(inFlight);
      finished();
    }
    if (commit.kind === 'incomplete') {
      this.#error(
        state,
        'L1',
        record.step,
        `L1 commit incomplete: ${commit.gaps.map((g) => g.kind).join(', ')}`,
        'l1-commit',
      );
      return;
    }
    state.newest.L1 = record.step;
    state.newestBytes.L1 = sumBytes(records);
    this.#options.onCommit?.({ job: record.job, level: 'L1', step: record.step });
    // A function of the step alone: a spare or a restarted daemon, which has seen fewer
    // commits, picks the same steps as the others, so every rank of a picked step reaches L3.
    const persist =
      this.#l3Root(record.job) !== undefined &&
      persistsToL3(record.step, { l3Every: state.l3Every, everySteps: state.everySteps });
    this.#enqueue(state, {
      step: record.step,
      records,
      replicate: this.#replica !== null,
      persist,
    });
  }

  /** Where `rank`'s shards of `job` can be read from, newest step first, nearest level first. */
  async sources(
    job: string,
    rank: number,
  ): Promise<{ step: number; sources: ShardSourceInfo[] }[]> {
    const byStep = new Map<number, ShardSourceInfo[]>();
    const add = (step: number, source: ShardSourceInfo): void => {
      const list = byStep.get(step) ?? [];
      list.push(source);
      byStep.set(step, list);
    };
    const local: [Level, string | undefined][] = [
      ['L1', this.#options.l1Root],
      ['L2', this.#options.l2Root],
      ['L3', this.#l3Root(job)],
    ];
    for (const [level, root] of local) {
      if (root === undefined) continue;
      for (const status of await scanJob(root, job, { level })) {
        if (!isCommitted(status) || status.manifest === null) continue;
        const shard = status.manifest.shards.find((s) => s.rank === rank);
        if (shard === undefined) continue;
        add(status.step, {
          level,
          node: level === 'L3' ? 'durable' : this.node,
          path: asStore(root).locate(fileKey(job, shard.file)),
          bytes: shard.bytes,
          xxh3: shard.xxh3,
          timeline: status.manifest.timeline,
        });
      }
    }
    const outgoing = new Set(this.#access.get(job)?.outgoing.map((o) => o.node) ?? []);
    await Promise.all(
      // Only peers this node holds a key for in this job may be asked (the others refuse).
      [...this.#peers.values()]
        .filter((p) => outgoing.has(p.peer.node))
        .map(async (peer) => {
          try {
            for (const holding of await peer.list(job))
              if (holding.ranks.includes(rank))
                add(holding.step, {
                  level: 'L2',
                  node: peer.peer.node,
                  bytes: -1,
                  xxh3: '',
                  timeline: holding.timeline ?? 0,
                });
          } catch (error) {
            this.#log.warn(
              { peer: peer.peer.node, err: String(error) },
              'peer unreachable for restore',
            );
          }
        }),
    );
    const order: Record<Level, number> = { L1: 0, L2: 1, L3: 2 };
    return [...byStep.entries()]
      .sort(([a], [b]) => b - a)
      .map(([step, sources]) => ({
        step,
        sources: sources.sort(
          (a, b) =>
            order[a.level] - order[b.level] ||
            Number(b.node === this.node) - Number(a.node === this.node),
        ),
      }));
  }

  /**
   * H3 (timelines): removes this node's L2 replicas of `job`'s steps newer than `afterStep` from
   * timelines below `timeline`, then asks every peer to do the same (prune.ts). A peer that
   * cannot be reached is reported, not fatal: restores never combine timelines anyway.
   */
  async prune(
    job: string,
    request: PruneRequest,
  ): Promise<{
    node: string;
    pruned: PrunedStep[];
    peers: { node: string; pruned?: PrunedStep[]; error?: string }[];
  }> {
    const pruned = await pruneAbandonedSteps(this.#options.l2Root, job, request);
    const peers = await Promise.all(
      [...this.#peers.values()].map(async (peer) => {
        try {
          return { node: peer.peer.node, pruned: await peer.prune(job, request) };
        } catch (error) {
          this.#log.warn({ job, peer: peer.peer.node, err: describe(error) }, 'peer prune failed');
          return { node: peer.peer.node, error: describe(error) };
        }
      }),
    );
    if (pruned.length > 0 || peers.some((p) => (p.pruned?.length ?? 0) > 0))
      this.#log.info({ job, ...request, pruned, peers }, 'abandoned replicas pruned');
    return { node: this.node, pruned, peers };
  }

  /** Streams a shard held by `node` (this one or a peer) at `level`. */
  async fetchShard(
    job: string,
    step: number,
    rank: number,
    node: string,
    signal?: AbortSignal,
  ): Promise<{ bytes: number; xxh3: string; payload: AsyncIterable<Uint8Array> }> {
    if (node === this.node || node === 'durable') {
      const list = await this.sources(job, rank);
      const source = list
        .find((s) => s.step === step)
        ?.sources.find((s) => s.path !== undefined && s.node === node);
      if (source?.path === undefined)
        throw new CubeError('FILE_NOT_FOUND', `no shard of rank ${rank} step ${step} on ${node}`, {
          where: { node, rank },
        });
      const { createReadStream } = await import('node:fs');
      return { bytes: source.bytes, xxh3: source.xxh3, payload: createReadStream(source.path) };
    }
    const peer = this.#peers.get(node);
    if (peer === undefined)
      throw new CubeError('UNKNOWN_ID', `unknown peer node "${node}"`, {
        where: { node, allowed: [...this.#peers.keys()] },
      });
    const release = this.#leases.acquire(job, step);
    try {
      const shard = await peer.getShard(job, step, rank, signal === undefined ? {} : { signal });
      return shard;
    } finally {
      release();
    }
  }

  /** The record of `rank`'s shard of `step` as `node` holds it at `level` (its `extra` included). */
  async record(
    job: string,
    step: number,
    rank: number,
    level: Level,
    node: string,
  ): Promise<ShardRecord> {
    if (node === this.node || node === 'durable') {
      const root =
        level === 'L1'
          ? this.#options.l1Root
          : level === 'L2'
            ? this.#options.l2Root
            : this.#l3Root(job);
      if (root !== undefined) {
        const status = (await scanJob(root, job, { level })).find((s) => s.step === step);
        if (status !== undefined && isCommitted(status) && status.ranks.includes(rank)) {
          const read = await readRecord(root, job, step, rank);
          if (read.kind === 'valid') return read.value;
        }
      }
      throw new CubeError(
        'FILE_NOT_FOUND',
        `no committed record of rank ${rank} step ${step} at ${level} on ${node}`,
        {
          where: { node, rank },
        },
      );
    }
    const peer = this.#peers.get(node);
    if (peer === undefined)
      throw new CubeError('UNKNOWN_ID', `unknown peer node "${node}"`, {
        where: { node, allowed: [...this.#peers.keys()] },
      });
    return peer.record(job, step, rank);
  }

  status(): JobStatus[] {
    return [...this.#jobs.values()].map((s) => ({
      job: s.job,
      worldSize: s.worldSize,
      localRanks: [...s.localRanks].sort((a, b) => a - b),
      newest: { ...s.newest },
      inFlight: s.work
        .filter((w) => w.state !== 'done')
        .map((w) => ({ step: w.step, state: w.state })),
      dropped: [...s.dropped],
      errors: [...s.errors],
    }));
  }

  /** Running totals and the queue right now (`GET /v1/counters`). */
  counters(): DaemonCounters {
    let queued = 0;
    let running = 0;
    for (const s of this.#jobs.values())
      for (const w of s.work) {
        if (w.state === 'queued') queued += 1;
        else if (w.state === 'running') running += 1;
      }
    return {
      ...this.#totals,
      failures: { ...this.#totals.failures },
      queued,
      running,
      jobs: [...this.#jobs.values()].map((s) => ({
        job: s.job,
        newestBytes: { ...s.newestBytes },
      })),
    };
  }

  /** Resolves when every queued item of `job` is done (tests, shutdown). */
  async idle(job: string): Promise<void> {
    const state = this.#jobs.get(job);
    if (state === undefined) return;
    while (state.work.some((w) => w.state !== 'done'))
      await Promise.all(state.work.map((w) => w.done));
  }

  #job(job: string): JobState {
    const state = this.#jobs.get(job);
    if (state === undefined)
      throw new CubeError('UNKNOWN_ID', `job "${job}" has not registered with ${this.node}`, {
        where: { node: this.node },
        hint: 'the checkpoint client registers each rank before its first save',
      });
    return state;
  }

  #enqueue(
    state: JobState,
    spec: { step: number; records: readonly ShardRecord[]; replicate: boolean; persist: boolean },
  ): void {
    let finish = (): void => undefined;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const item: WorkItem = { ...spec, abort: new AbortController(), state: 'queued', done, finish };
    state.work.push(item);
    if (!state.working) void this.#drain(state);
  }

  async #drain(state: JobState): Promise<void> {
    state.working = true;
    try {
      for (;;) {
        const item = state.work.find((w) => w.state === 'queued');
        if (item === undefined) break;
        item.state = 'running';
        try {
          await this.#run(state, item);
        } finally {
          item.state = 'done';
          item.finish();
          state.work.splice(state.work.indexOf(item), 1);
        }
        await this.#collect(state.job);
      }
    } finally {
      state.working = false;
    }
  }

  async #run(state: JobState, item: WorkItem): Promise<void> {
    const release = this.#leases.acquire(state.job, item.step);
    const signal = item.abort.signal;
    state.readBuffers ??= [Buffer.allocUnsafe(readChunkBytes), Buffer.allocUnsafe(readChunkBytes)];
    const buffers = state.readBuffers;
    try {
      if (item.replicate && this.#replica !== null && !signal.aborted) {
        const setRanks = item.records.map((r) => r.rank);
        const started = performance.now();
        let sent = 0;
        try {
          const l1 = asStore(this.#options.l1Root);
          for (const record of item.records) {
            // sendFrame flushes each chunk before it asks for the one after next, and putShard
            // returns once every byte was sent: the buffers are free again for the next read.
            const payload = await l1.get(fileKey(record.job, record.file), {
              signal,
              transient: true,
              buffers,
            });
            await this.#replica.putShard(record, setRanks, payload, { pace: this.#pace, signal });
            sent += record.bytes;
          }
          if (item.step >= (state.newest.L2 ?? -1)) state.newestBytes.L2 = sent;
          state.newest.L2 = Math.max(state.newest.L2 ?? -1, item.step);
          this.#options.onCommit?.({ job: state.job, level: 'L2', step: item.step });
        } catch (error) {
          if (!signal.aborted) this.#error(state, 'L2', item.step, describe(error), 'replication');
        } finally {
          // Shards pushed before a failure count too: they crossed the network.
          this.#totals.replicatedBytes += sent;
          this.#totals.replicationSeconds += (performance.now() - started) / 1000;
        }
      }
      const l3Root = this.#l3Root(state.job);
      if (item.persist && l3Root !== undefined && !signal.aborted) {
        const started = performance.now();
        try {
          const result = await persistStep(this.#options.l1Root, l3Root, state.job, item.step, {
            from: 'L1',
            to: 'L3',
            ranks: item.records.map((r) => r.rank),
            expectRanks: Array.from({ length: state.worldSize }, (_, r) => r),
            signal,
            readBuffers: buffers,
          });
          this.#totals.persistedBytes += sumBytes(item.records);
          if (result.commit.kind !== 'incomplete') {
            if (item.step >= (state.newest.L3 ?? -1)) state.newestBytes.L3 = sumBytes(item.records);
            state.fenced = false;
            state.newest.L3 = Math.max(state.newest.L3 ?? -1, item.step);
            this.#options.onCommit?.({ job: state.job, level: 'L3', step: item.step });
          }
        } catch (error) {
          if (isFenced(error)) state.fenced = true;
          if (!signal.aborted)
            this.#error(
              state,
              'L3',
              item.step,
              describe(error),
              isFenced(error) ? 'fenced' : 'persist',
            );
        } finally {
          this.#totals.persistSeconds += (performance.now() - started) / 1000;
        }
      }
    } finally {
      release();
    }
  }

  async #collect(job: string): Promise<void> {
    const state = this.#jobs.get(job);
    // A fenced attempt's steps decide nothing at L3: the newer attempt's retention does.
    const l3Root = state?.fenced === true ? undefined : this.#l3Root(job);
    try {
      await collectGarbage(
        {
          L1: this.#options.l1Root,
          L2: this.#options.l2Root,
          ...(l3Root === undefined ? {} : { L3: l3Root }),
        },
        job,
        { keep: { ...defaultKeep, ...(state?.keep ?? this.#options.keep) }, leases: this.#leases },
      );
    } catch (error) {
      this.#log.warn({ job, err: describe(error) }, 'garbage collection failed');
    }
  }

  #l3Root(job: string): string | undefined {
    return this.#l3Roots.get(job) ?? this.#options.l3Root;
  }

  #error(
    state: JobState,
    level: Level,
    step: number,
    message: string,
    kind: DaemonFailureKind,
  ): void {
    this.#totals.failures[kind] += 1;
    state.errors.push({ at: new Date().toISOString(), level, step, message });
    if (state.errors.length > maxErrors) state.errors.splice(0, state.errors.length - maxErrors);
    this.#log.warn(
      { job: state.job, level, step, err: message },
      'checkpoint level failed; training continues',
    );
  }
}

function sumBytes(records: readonly ShardRecord[]): number {
  return records.reduce((n, r) => n + r.bytes, 0);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
