import { createServer, type Server, type Socket } from 'node:net';
import { CubeError } from '../../core/index.ts';
import { tryCommit } from '../commit.ts';
import { asStore } from '../fs-store.ts';
import { fileKey, shardFile } from '../layout.ts';
import { putRecord } from '../save-shard.ts';
import { scanJob, isCommitted, readRecord } from '../scan.ts';
import type { ShardRecord } from '../schemas.ts';
import type { ByteSource } from '../atomic-file.ts';
import { fetchPayload } from './dial-back.ts';
import { FrameReader, sendFrame, type FrameHeader } from './frames.ts';
import {
  peerRequestSchema,
  type PeerReply,
  type PeerRequest,
  type ReplicaHolding,
} from './peer-protocol.ts';
import { allocateStagingBuffers, type StagingBuffers } from './staged-receive.ts';
import type { DaemonLog } from './daemon-log.ts';

export interface PeerServerOptions {
  /** This daemon's node name (written into nothing: replicas keep their source's node). */
  readonly node: string;
  /** Where replicas from peers land (the L2 level root). */
  readonly l2Root: string;
  /** Where `get-shard` may read from, most local first: own L1, own L2. */
  readonly readRoots: () => readonly { level: 'L1' | 'L2'; root: string }[];
  readonly log: DaemonLog;
  /** Called after a replica set is committed at L2 (for GC and metrics). */
  readonly onReplicaCommitted?: (job: string, step: number) => void;
}

/**
 * The daemon's TCP side: receives replicas (verifying size and XXH3 while streaming them to
 * disk, so a torn or corrupt transfer never becomes a replica), lists its holdings and serves
 * shard bytes to peers that restore from it.
 */
export class PeerServer {
  readonly #options: PeerServerOptions;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  /** Per job and step, the ranks of each source set received (to commit L2 manifests). */
  readonly #received = new Map<string, Map<number, Set<number>>>();
  readonly #sets = new Map<string, Map<number, Set<string>>>();
  /** Receive buffers of finished fetches, reused by the next. */
  readonly #staging: StagingBuffers[] = [];

  constructor(options: PeerServerOptions) {
    this.#options = options;
    this.#server = createServer((socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      void this.#serve(socket);
    });
  }

  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const address = this.#server.address();
    if (address === null || typeof address === 'string')
      throw new CubeError('INTERNAL', 'peer server has no TCP address');
    return { host: address.address, port: address.port };
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #serve(socket: Socket): Promise<void> {
    const reader = new FrameReader(socket);
    try {
      for (;;) {
        const frame = await reader.next();
        if (frame === null) break;
        await this.#handle(socket, frame.header, frame.runs);
      }
    } catch (error) {
      this.#options.log.warn({ err: String(error) }, 'peer connection dropped');
      socket.destroy();
    }
  }

  async #handle(
    socket: Socket,
    header: FrameHeader,
    runs: AsyncIterable<Buffer[]> | null,
  ): Promise<void> {
    const parsed = peerRequestSchema.safeParse(header);
    if (!parsed.success) {
      await sendFrame(socket, {
        op: 'error',
        code: 'INVALID_VALUE',
        message: `bad peer request: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
      });
      return;
    }
    const request = parsed.data;
    switch (request.op) {
      case 'put-shard': {
        const pieces: ByteSource = { kind: 'pieces', runs: runs ?? noRuns() };
        // A socket's pieces are fresh buffers: written by reference, without a copy.
        const reply = await this.#replyToStore(request.record, () =>
          this.#storeReplica(request.record, request.setRanks, pieces),
        );
        await sendFrame(socket, reply);
        return;
      }
      case 'offer-shard': {
        const reply = await this.#fetchReplica(socket, request);
        await sendFrame(socket, reply);
        return;
      }
      case 'list': {
        const holdings = await this.holdings(request.job);
        await sendFrame(socket, { op: 'ok', holdings });
        return;
      }
      case 'get-record': {
        const record = await this.record(request.job, request.step, request.rank);
        await sendFrame(
          socket,
          record === null
            ? {
                op: 'error',
                code: 'FILE_NOT_FOUND',
                message: `no committed record of rank ${request.rank} step ${request.step} of ${request.job} on ${this.#options.node}`,
              }
            : { op: 'ok', record },
        );
        return;
      }
      case 'get-shard': {
        await this.#sendShard(socket, request.job, request.step, request.rank);
        return;
      }
      default:
        request satisfies never;
    }
  }

  /** The steps of `job` this node holds committed replicas of (L2). */
  async holdings(job: string): Promise<ReplicaHolding[]> {
    const statuses = await scanJob(this.#options.l2Root, job, { level: 'L2' });
    return statuses
      .filter(isCommitted)
      .map((s) => ({ step: s.step, ranks: s.ranks, bytes: s.bytes }));
  }

  /**
   * Fetches an offered shard over a connection to the sender and stores it. A sender that
   * cannot be reached gets `dialBack: 'failed'` in the error, and sends the bytes itself.
   */
  async #fetchReplica(
    socket: Socket,
    offer: Extract<PeerRequest, { op: 'offer-shard' }>,
  ): Promise<PeerReply> {
    const host = socket.remoteAddress;
    const buffers = this.#staging.pop() ?? allocateStagingBuffers();
    // One set per concurrent transfer is kept for the next (a few senders at most).
    const release = (): void => {
      if (this.#staging.length < 2) this.#staging.push(buffers);
    };
    let fetched: Awaited<ReturnType<typeof fetchPayload>>;
    try {
      if (host === undefined) throw new CubeError('INFEASIBLE', 'the sender has no address');
      fetched = await fetchPayload(
        { host, port: offer.port, ticket: offer.ticket, bytes: offer.record.bytes },
        buffers,
      );
    } catch (error) {
      release();
      const message = error instanceof Error ? error.message : String(error);
      return { op: 'error', code: 'INFEASIBLE', message, dialBack: 'failed' };
    }
    try {
      return await this.#replyToStore(offer.record, () =>
        this.#storeReplica(offer.record, offer.setRanks, {
          kind: 'stream',
          stream: fetched.chunks,
        }),
      );
    } finally {
      fetched.close();
      release();
    }
  }

  /** Runs `store` and turns its outcome into the reply frame; a rejection is logged. */
  async #replyToStore(record: ShardRecord, store: () => Promise<void>): Promise<PeerReply> {
    try {
      await store();
      return { op: 'ok' };
    } catch (error) {
      const e = error instanceof CubeError ? error : new CubeError('INTERNAL', String(error));
      this.#options.log.warn(
        { job: record.job, step: record.step, rank: record.rank, err: e.message },
        'replica rejected',
      );
      return { op: 'error', code: e.code, message: e.message };
    }
  }

  async #storeReplica(
    record: ShardRecord,
    setRanks: readonly number[],
    source: ByteSource,
  ): Promise<void> {
    const store = asStore(this.#options.l2Root);
    const file = shardFile(record.step, record.rank);
    // `expected` makes the store discard (never rename into place) content that differs.
    await store.put(fileKey(record.job, file), source, {
      expected: { bytes: record.bytes, xxh3: record.xxh3 },
    });
    await putRecord(store, { ...record, file });
    const ranks = this.#noteReceived(record.job, record.step, record.rank, setRanks);
    if (ranks.length === 0) return;
    const result = await tryCommit(store, record.job, record.step, {
      level: 'L2',
      expectRanks: ranks,
    });
    if (result.kind === 'incomplete')
      this.#options.log.warn(
        { job: record.job, step: record.step, gaps: result.gaps.map((g) => g.kind) },
        'replica set incomplete after receiving its last shard',
      );
    else this.#options.onReplicaCommitted?.(record.job, record.step);
  }

  /** Records a received rank; returns the ranks of every complete set of the step (or []). */
  #noteReceived(job: string, step: number, rank: number, setRanks: readonly number[]): number[] {
    const byStep = this.#received.get(job) ?? new Map<number, Set<number>>();
    this.#received.set(job, byStep);
    const got = byStep.get(step) ?? new Set<number>();
    byStep.set(step, got);
    got.add(rank);
    const setsByStep = this.#sets.get(job) ?? new Map<number, Set<string>>();
    this.#sets.set(job, setsByStep);
    const sets = setsByStep.get(step) ?? new Set<string>();
    setsByStep.set(step, sets);
    sets.add(JSON.stringify([...setRanks].sort((a, b) => a - b)));
    const complete = [...sets]
      .map((s) => JSON.parse(s) as number[])
      .filter((set) => set.every((r) => got.has(r)));
    if (!complete.some((set) => set.includes(rank))) return [];
    // Old steps' bookkeeping is dropped as new ones arrive (GC removes their files).
    for (const old of byStep.keys()) if (old < step - 64) byStep.delete(old);
    return [...new Set(complete.flat())].sort((a, b) => a - b);
  }

  /** The record of a committed shard this node holds (own L1 first, then L2), or null. */
  async record(job: string, step: number, rank: number): Promise<ShardRecord | null> {
    for (const { level, root } of this.#options.readRoots()) {
      const statuses = await scanJob(root, job, { level });
      const status = statuses.find((s) => s.step === step && isCommitted(s));
      if (status?.manifest?.shards.some((s) => s.rank === rank) !== true) continue;
      const read = await readRecord(root, job, step, rank);
      if (read.kind === 'valid') return read.value;
    }
    return null;
  }

  async #sendShard(socket: Socket, job: string, step: number, rank: number): Promise<void> {
    for (const { level, root } of this.#options.readRoots()) {
      const statuses = await scanJob(root, job, { level });
      const status = statuses.find((s) => s.step === step && isCommitted(s));
      const shard = status?.manifest?.shards.find((s) => s.rank === rank);
      if (shard === undefined) continue;
      const store = asStore(root);
      // sendFrame flushes each chunk before it asks for the one after next.
      const stream = await store.get(fileKey(job, shard.file), { transient: true });
      await sendFrame(
        socket,
        { op: 'ok', bytes: shard.bytes, xxh3: shard.xxh3, level, record: shard },
        stream,
      );
      return;
    }
    await sendFrame(socket, {
      op: 'error',
      code: 'FILE_NOT_FOUND',
      message: `no committed replica of rank ${rank} step ${step} of ${job} on ${this.#options.node}`,
    });
  }
}

async function* noRuns(): AsyncGenerator<Uint8Array[]> {}
