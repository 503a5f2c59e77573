import { rmdir, stat } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { dirname, resolve } from 'node:path';
import { CubeError } from '../../core/index.ts';
import { tryCommit } from '../commit.ts';
import { asStore } from '../fs-store.ts';
import { fileKey, shardFile } from '../layout.ts';
import { deleteStep } from '../retention.ts';
import { putRecord } from '../save-shard.ts';
import { scanJob, isCommitted, readManifest, readRecord } from '../scan.ts';
import type { ShardRecord } from '../schemas.ts';
import type { ByteSource } from '../atomic-file.ts';
import { fetchPayload } from './dial-back.ts';
import { FrameReader, sendFrame, type FrameHeader } from './frames.ts';
import {
  helloMac,
  macEquals,
  newNonce,
  welcomeMac,
  type PeerAccess,
  type PeerGrant,
} from './peer-auth.ts';
import {
  helloSchema,
  peerRequestSchema,
  type PeerReply,
  type PeerRequest,
  type ReplicaHolding,
} from './peer-protocol.ts';
import { pruneAbandonedSteps } from './prune.ts';
import { allocateStagingBuffers, type StagingBuffers } from './staged-receive.ts';
import type { DaemonLog } from './daemon-log.ts';
import type { PeerTls } from './peer-tls.ts';

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
  /** A connection that has not authenticated by then is closed (default 10 s). */
  readonly authTimeoutMs?: number;
  /** A connection with no byte in either direction for this long is closed (default 60 s). */
  readonly idleTimeoutMs?: number;
  /** Free bytes the L2 filesystem keeps after a replica is written (default 64 MiB). */
  readonly reserveBytes?: number;
  /** Serve TLS (mutual: clients present a certificate of the same CA); see peer-tls.ts. */
  readonly tls?: PeerTls;
}

/** An authenticated connection: the job attempt and node its key proved. */
interface Session {
  readonly job: string;
  readonly attempt: number;
  readonly node: string;
}

/** A refusal sent as an error frame; `close` ends the connection after it. */
class Refusal extends Error {
  readonly code: string;
  readonly close: boolean;
  constructor(code: string, message: string, close = false) {
    super(message);
    this.code = code;
    this.close = close;
  }
}

const defaultAuthTimeoutMs = 10_000;
const defaultIdleTimeoutMs = 60_000;
const defaultReserveBytes = 64 * 1024 * 1024;

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
  /** Per job, the newest attempt's grants by calling node. */
  readonly #access = new Map<string, { attempt: number; grants: Map<string, PeerGrant> }>();
  /** The authenticated connections, to close those of an attempt that is superseded. */
  readonly #sessions = new Map<Socket, Session>();

  constructor(options: PeerServerOptions) {
    this.#options = options;
    const accept = (socket: Socket): void => {
      this.#sockets.add(socket);
      socket.on('close', () => {
        this.#sockets.delete(socket);
        this.#sessions.delete(socket);
      });
      socket.on('error', () => socket.destroy());
      void this.#serve(socket);
    };
    const tls = options.tls;
    this.#server =
      tls === undefined
        ? createServer(accept)
        : createTlsServer(
            {
              cert: tls.cert,
              key: tls.key,
              ca: tls.ca,
              requestCert: true,
              rejectUnauthorized: true,
              minVersion: 'TLSv1.3',
              handshakeTimeout: options.authTimeoutMs ?? defaultAuthTimeoutMs,
            },
            accept,
          );
  }

  /**
   * Sets who may connect for `job` (its newest attempt's access). An older attempt's access
   * is dropped, and so are connections it authenticated; access for an older attempt than the
   * one held is ignored.
   */
  setAccess(job: string, access: PeerAccess | null): void {
    const held = this.#access.get(job);
    if (access !== null && held !== undefined && access.attempt < held.attempt) return;
    if (access === null) this.#access.delete(job);
    else
      this.#access.set(job, {
        attempt: access.attempt,
        grants: new Map(access.incoming.map((g) => [g.node, g])),
      });
    for (const [socket, session] of this.#sessions)
      if (session.job === job && session.attempt !== access?.attempt) socket.destroy();
  }

  /** The grant an authenticated connection holds now (null once its attempt is superseded). */
  #grant(session: Session): PeerGrant | null {
    const held = this.#access.get(session.job);
    if (held === undefined || held.attempt !== session.attempt) return null;
    return held.grants.get(session.node) ?? null;
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
    const idleMs = this.#options.idleTimeoutMs ?? defaultIdleTimeoutMs;
    let busy = false;
    // No byte either way for idleMs: closed, unless a request is being served (an offered
    // shard arrives on another connection, and a slow reader of a shard stalls this one).
    socket.setTimeout(idleMs, () => {
      if (busy) socket.setTimeout(idleMs);
      else socket.destroy();
    });
    try {
      const session = await this.#authenticate(socket, reader);
      if (session === null) return;
      for (;;) {
        const frame = await reader.next();
        if (frame === null) break;
        busy = true;
        try {
          await this.#handle(socket, session, frame.header, frame.runs);
        } catch (error) {
          if (!(error instanceof Refusal)) throw error;
          await sendFrame(socket, { op: 'error', code: error.code, message: error.message });
          if (error.close) {
            // The refused payload is never read: the connection ends once the reply is out.
            closeAfterReply(socket);
            return;
          }
        } finally {
          busy = false;
        }
      }
    } catch (error) {
      this.#options.log.warn({ err: String(error) }, 'peer connection dropped');
      socket.destroy();
    }
  }

  /**
   * The handshake (peer-auth.ts): a fresh nonce out, a `hello` with a MAC over both nonces,
   * the job attempt and both node names in, a `welcome` with this node's MAC back. Any failure
   * gets one error frame saying which check failed, and the connection is closed.
   */
  async #authenticate(socket: Socket, reader: FrameReader): Promise<Session | null> {
    const serverNonce = newNonce();
    const timeoutMs = this.#options.authTimeoutMs ?? defaultAuthTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const refuse = async (message: string, retry = false): Promise<null> => {
      clearTimeout(timer);
      this.#options.log.warn(
        { remote: socket.remoteAddress, why: message },
        'peer connection refused',
      );
      // `retry`: this node has not yet had the newer attempt's access the client names.
      await sendFrame(socket, {
        op: 'error',
        code: 'UNAUTHENTICATED',
        message,
        ...(retry ? { retry: true } : {}),
      }).catch(() => undefined);
      closeAfterReply(socket);
      return null;
    };
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
      // A connection dropped meanwhile must not keep a stopping daemon alive.
      timer.unref();
    });
    await sendFrame(socket, { op: 'challenge', nonce: serverNonce });
    const first = await Promise.race([reader.next(), timedOut]);
    if (first === 'timeout') return refuse(`not authenticated within ${timeoutMs} ms`);
    clearTimeout(timer);
    if (first === null) return null;
    const parsed = helloSchema.safeParse(first.header);
    if (!parsed.success || (first.header.bytes ?? 0) > 0)
      return refuse('the first frame on a peer connection must be a valid hello');
    const hello = parsed.data;
    const held = this.#access.get(hello.job);
    if (held === undefined) return refuse(`no peer access for job ${hello.job} on this node`, true);
    if (held.attempt !== hello.attempt)
      return refuse(
        `job ${hello.job} attempt ${hello.attempt} is not current here (attempt ${held.attempt} is)`,
        hello.attempt > held.attempt,
      );
    const grant = held.grants.get(hello.from);
    if (grant === undefined)
      return refuse(`node ${hello.from} has no peer access for job ${hello.job} on this node`);
    const transcript = {
      serverNonce,
      clientNonce: hello.clientNonce,
      job: hello.job,
      attempt: hello.attempt,
      from: hello.from,
      to: this.#options.node,
    };
    if (!macEquals(hello.mac, helloMac(grant.key, transcript)))
      return refuse('the hello MAC does not verify');
    await sendFrame(socket, { op: 'welcome', mac: welcomeMac(grant.key, transcript) });
    const session: Session = { job: hello.job, attempt: hello.attempt, node: hello.from };
    this.#sessions.set(socket, session);
    return session;
  }

  async #handle(
    socket: Socket,
    session: Session,
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
    this.#authorize(session, request);
    switch (request.op) {
      case 'put-shard': {
        if (request.bytes !== request.record.bytes)
          throw new Refusal(
            'INVALID_VALUE',
            `the frame carries ${request.bytes} bytes, its record says ${request.record.bytes}`,
            true,
          );
        await this.#admitReplica(request.record, true);
        const pieces: ByteSource = { kind: 'pieces', runs: runs ?? noRuns() };
        // A socket's pieces are fresh buffers: written by reference, without a copy.
        const reply = await this.#replyToStore(request.record, () =>
          this.#storeReplica(request.record, request.setRanks, pieces),
        );
        await sendFrame(socket, reply);
        return;
      }
      case 'offer-shard': {
        await this.#admitReplica(request.record, false);
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
      case 'prune': // H3: see prune.ts
        await sendFrame(socket, {
          op: 'ok',
          pruned: await pruneAbandonedSteps(this.#options.l2Root, request.job, request),
        });
        return;
      default:
        request satisfies never;
    }
  }

  /** Refuses a request the connection's grant does not cover. */
  #authorize(session: Session, request: PeerRequest): void {
    const grant = this.#grant(session);
    if (grant === null)
      throw new Refusal(
        'UNAUTHENTICATED',
        `the access of job ${session.job} attempt ${session.attempt} was withdrawn`,
        true,
      );
    const forbidden = (what: string): Refusal =>
      new Refusal(
        'FORBIDDEN',
        `node ${session.node} may not ${what} (job ${session.job} attempt ${session.attempt})`,
        request.op === 'put-shard',
      );
    switch (request.op) {
      case 'put-shard':
      case 'offer-shard': {
        const { job, rank } = request.record;
        if (job !== session.job) throw forbidden(`write replicas of job ${job}`);
        if (!grant.writeRanks.includes(rank))
          throw forbidden(`write the replica of rank ${rank} here`);
        const outside = request.setRanks.filter((r) => !grant.writeRanks.includes(r));
        if (outside.length > 0)
          throw forbidden(`name ranks ${outside.join(', ')} in a replica set here`);
        return;
      }
      case 'list':
      case 'prune': // H3: any node of the job's current attempt, like `list`
      case 'get-record':
      case 'get-shard':
        if (request.job !== session.job) throw forbidden(`read job ${request.job}`);
        if (
          request.op !== 'list' &&
          request.op !== 'prune' &&
          !grant.readRanks.includes(request.rank)
        )
          throw forbidden(`read rank ${request.rank} here`);
        return;
      default:
        request satisfies never;
    }
  }

  /**
   * Checks, before any byte is received, that a replica may be stored: the L2 filesystem has
   * room for it, and it replaces nothing it must not. A committed step is never overwritten
   * unless the replica is of a newer timeline (training restarted from an older step and saved
   * this step anew): then the abandoned step is removed first. A complete shard of the same or
   * a newer timeline is never replaced.
   */
  async #admitReplica(record: ShardRecord, closeOnRefusal: boolean): Promise<void> {
    const root = this.#options.l2Root;
    const reserve = this.#options.reserveBytes ?? defaultReserveBytes;
    const free = await asStore(root).freeBytes();
    if (free !== null && free < record.bytes + reserve)
      throw new Refusal(
        'STORAGE_FAILED',
        `no room for a replica of ${record.bytes} bytes on ${this.#options.node}: ${free} bytes free under ${root}, ${reserve} kept in reserve`,
        closeOnRefusal,
      );
    const manifest = await readManifest(root, record.job, record.step, { level: 'L2' });
    if (manifest.kind === 'valid') {
      if (manifest.value.timeline >= record.timeline)
        throw new Refusal(
          'INFEASIBLE',
          `step ${record.step} of ${record.job} is already committed at L2 on ${this.#options.node} (timeline ${manifest.value.timeline}); a committed step is never overwritten`,
          closeOnRefusal,
        );
      this.#options.log.warn(
        { job: record.job, step: record.step, old: manifest.value.timeline, new: record.timeline },
        'a newer timeline supersedes a committed L2 step: removing the old one',
      );
      await deleteStep(root, record.job, record.step);
      this.#received.get(record.job)?.delete(record.step);
      this.#sets.get(record.job)?.delete(record.step);
      return;
    }
    const existing = await readRecord(root, record.job, record.step, record.rank);
    if (existing.kind === 'valid' && existing.value.timeline >= record.timeline)
      throw new Refusal(
        'INFEASIBLE',
        `rank ${record.rank} of step ${record.step} of ${record.job} is already stored on ${this.#options.node} (timeline ${existing.value.timeline})`,
        closeOnRefusal,
      );
  }

  /** The steps of `job` this node holds committed replicas of (L2). */
  async holdings(job: string): Promise<ReplicaHolding[]> {
    const statuses = await scanJob(this.#options.l2Root, job, { level: 'L2' });
    return statuses
      .filter(isCommitted)
      .map((s) => ({ step: s.step, timeline: s.timeline ?? 0, ranks: s.ranks, bytes: s.bytes }));
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
    const path = store.locate(fileKey(record.job, file));
    // The directories this write creates are removed again if it fails: a refused or aborted
    // transfer leaves nothing behind (the store removes its own temp file).
    const created = await missingDirs(dirname(path), resolve(this.#options.l2Root));
    try {
      // `expected` makes the store discard (never rename into place) content that differs.
      await store.put(fileKey(record.job, file), source, {
        expected: { bytes: record.bytes, xxh3: record.xxh3 },
      });
      await putRecord(store, { ...record, file });
    } catch (error) {
      await store.delete(fileKey(record.job, file)).catch(() => undefined);
      for (const dir of created) await rmdir(dir).catch(() => undefined);
      throw error;
    }
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

/** Ends `socket` once what was written is flushed, and drops whatever it still receives. */
function closeAfterReply(socket: Socket): void {
  socket.end(() => socket.destroy());
  // A peer that never reads its reply cannot hold the connection open.
  setTimeout(() => socket.destroy(), 5000).unref();
}

/** The directories from `dir` up to (not including) `root` that do not exist yet, deepest first. */
async function missingDirs(dir: string, root: string): Promise<string[]> {
  const missing: string[] = [];
  for (let d = dir; d.length > root.length && d.startsWith(root); d = dirname(d)) {
    try {
      await stat(d);
      break;
    } catch {
      missing.push(d);
    }
  }
  return missing;
}
