import { connect, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { CubeError, type CubeErrorCode, errorCodes } from '../../core/index.ts';
import { shardRecordSchema, type ShardRecord } from '../schemas.ts';
import { PayloadListener } from './dial-back.ts';
import { FrameReader, sendFrame, sendPayload, type FrameHeader } from './frames.ts';
import { helloMac, macEquals, newNonce, welcomeMac } from './peer-auth.ts';
import { challengeSchema, welcomeSchema, type ReplicaHolding } from './peer-protocol.ts';
import type { PeerTls } from './peer-tls.ts';
import type { PruneRequest, PrunedStep } from './prune.ts';

/** Where a peer daemon listens for replication traffic. */
export interface PeerAddress {
  readonly node: string;
  readonly host: string;
  readonly port: number;
}

/** The key this node proves itself with toward a peer, for one job's current attempt. */
export interface PeerCredential {
  readonly attempt: number;
  readonly key: string;
}

export interface PeerClientOptions {
  /** This node's name (the `from` of the handshake). */
  readonly self: string;
  /** The key for `job` toward this peer, or null when this node has none. */
  readonly credential: (job: string) => PeerCredential | null;
  /** How long the handshake may take (default 10 s). */
  readonly handshakeTimeoutMs?: number;
  /** Connect with TLS (peer-tls.ts); replicas are then pushed on the TLS connection. */
  readonly tls?: PeerTls;
  /** How long to retry a peer that has not yet had this attempt's keys (default 10 s). */
  readonly behindWaitMs?: number;
  /**
   * An unused connection is closed after this long (default 30 s), before the peer's own
   * idle timeout (60 s) would close it under a request.
   */
  readonly idleTimeoutMs?: number;
}

function replyError(peer: PeerAddress, header: FrameHeader): CubeError {
  const code =
    typeof header.code === 'string' && header.code in errorCodes
      ? header.code
      : header.code === 'UNAUTHENTICATED' || header.code === 'FORBIDDEN'
        ? 'INFEASIBLE'
        : 'INTERNAL';
  return new CubeError(code as CubeErrorCode, `peer ${peer.node}: ${String(header.message)}`, {
    where: { node: peer.node },
  });
}

async function open(peer: PeerAddress, signal?: AbortSignal, tls?: PeerTls): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // With TLS the peer's certificate must chain to the CA and name the host dialed.
    const socket =
      tls === undefined
        ? connect({ host: peer.host, port: peer.port })
        : connectTls({
            host: peer.host,
            port: peer.port,
            ca: tls.ca,
            cert: tls.cert,
            key: tls.key,
            minVersion: 'TLSv1.3',
          });
    socket.setNoDelay(true);
    const onAbort = (): void => {
      socket.destroy();
      reject(new CubeError('INFEASIBLE', `connecting to peer ${peer.node} was aborted`));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once(tls === undefined ? 'connect' : 'secureConnect', () => {
      signal?.removeEventListener('abort', onAbort);
      resolve(socket);
    });
    socket.once('error', (cause: Error) => {
      signal?.removeEventListener('abort', onAbort);
      reject(
        new CubeError(
          'INFEASIBLE',
          `cannot reach peer ${peer.node} at ${peer.host}:${peer.port}: ${cause.message}`,
          { where: { node: peer.node }, cause },
        ),
      );
    });
  });
}

/** A peer that has not yet had the launch command of the attempt this node's key is for. */
class PeerBehind extends CubeError {}

/**
 * Opens a connection to `peer` and runs the handshake, retrying for a few seconds while the
 * peer is behind: every node of a job gets its new attempt's keys with its next heartbeat, and
 * a restoring rank may ask a peer that has not had its heartbeat yet.
 */
async function openAuthenticated(
  peer: PeerAddress,
  job: string,
  options: PeerClientOptions,
  signal?: AbortSignal,
): Promise<{ socket: Socket; reader: FrameReader; attempt: number }> {
  const deadline = Date.now() + (options.behindWaitMs ?? 10_000);
  for (;;) {
    const socket = await open(peer, signal, options.tls);
    const reader = new FrameReader(socket);
    try {
      const attempt = await handshake(socket, reader, peer, job, options);
      return { socket, reader, attempt };
    } catch (error) {
      if (!(error instanceof PeerBehind) || Date.now() > deadline) throw error;
      signal?.throwIfAborted();
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/**
 * Runs the handshake on a fresh connection (peer-auth.ts): answers the peer's challenge with a
 * MAC proving this node's key for `job`, and checks the peer's `welcome` MAC, so a program
 * that took the peer's address but holds no key is never sent a shard.
 */
async function handshake(
  socket: Socket,
  reader: FrameReader,
  peer: PeerAddress,
  job: string,
  options: PeerClientOptions,
): Promise<number> {
  const credential = options.credential(job);
  if (credential === null)
    throw new CubeError(
      'INFEASIBLE',
      `no peer key for job ${job} toward ${peer.node}: the launch command gave none`,
      { where: { node: peer.node } },
    );
  const timeoutMs = options.handshakeTimeoutMs ?? 10_000;
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  try {
    const challenge = await reader.next();
    if (challenge === null)
      throw new CubeError('INFEASIBLE', `peer ${peer.node} hung up before its challenge`);
    if (challenge.header.op === 'error') throw replyError(peer, challenge.header);
    const parsedChallenge = challengeSchema.safeParse(challenge.header);
    if (!parsedChallenge.success)
      throw new CubeError('INFEASIBLE', `peer ${peer.node} sent no handshake challenge`, {
        where: { node: peer.node },
      });
    const transcript = {
      serverNonce: parsedChallenge.data.nonce,
      clientNonce: newNonce(),
      job,
      attempt: credential.attempt,
      from: options.self,
      to: peer.node,
    };
    await sendFrame(socket, {
      op: 'hello',
      job,
      attempt: credential.attempt,
      from: options.self,
      clientNonce: transcript.clientNonce,
      mac: helloMac(credential.key, transcript),
    });
    const welcome = await reader.next();
    if (welcome === null)
      throw new CubeError('INFEASIBLE', `peer ${peer.node} hung up during the handshake`);
    if (welcome.header.op === 'error') {
      const refused = replyError(peer, welcome.header);
      if (welcome.header.retry === true)
        throw new PeerBehind(refused.code, refused.message, { where: { node: peer.node } });
      throw refused;
    }
    const parsed = welcomeSchema.safeParse(welcome.header);
    if (!parsed.success || !macEquals(parsed.data.mac, welcomeMac(credential.key, transcript)))
      throw new CubeError(
        'INFEASIBLE',
        `the program at ${peer.host}:${peer.port} did not prove it is ${peer.node} (its welcome MAC does not verify)`,
        { where: { node: peer.node } },
      );
    return credential.attempt;
  } catch (error) {
    socket.destroy();
    if (error instanceof CubeError) throw error;
    throw new CubeError(
      'INFEASIBLE',
      `handshake with peer ${peer.node} failed: ${error instanceof Error ? error.message : String(error)}`,
      { where: { node: peer.node } },
    );
  } finally {
    clearTimeout(timer);
  }
}

/** One authenticated connection per job (a key proves one job attempt). */
interface Connection {
  readonly socket: Socket;
  readonly reader: FrameReader;
  readonly attempt: number;
}

/**
 * Connections to one peer daemon, one per job (each authenticated with that job's key).
 * Requests run one at a time (replication is a single ordered stream per peer); `getShard`
 * uses its own connection so a restore streaming a large shard never waits behind replication.
 */
export class PeerClient {
  readonly peer: PeerAddress;
  readonly #options: PeerClientOptions;
  readonly #connections = new Map<string, Connection>();
  #queue: Promise<unknown> = Promise.resolve();
  #busy = false;
  /** False once the peer could not connect back (or predates offers): replicas are pushed. */
  #offers = true;
  #listener: Promise<PayloadListener> | null = null;
  #closed = false;

  constructor(peer: PeerAddress, options: PeerClientOptions) {
    this.peer = peer;
    this.#options = options;
    // A dial-back payload would travel outside TLS: with TLS, replicas are always pushed.
    if (options.tls !== undefined) this.#offers = false;
  }

  /**
   * Sends one shard as a replica and resolves when the peer has verified and stored it. The
   * shard is offered and the peer fetches the bytes over a connection it dials to this node
   * (dial-back.ts: the receiver reads into one reused buffer); a peer that cannot connect back,
   * or predates offers, gets them pushed on this connection instead, from then on.
   */
  putShard(
    record: ShardRecord,
    setRanks: readonly number[],
    payload: AsyncIterable<Uint8Array>,
    options: { pace?: (bytes: number) => Promise<void>; signal?: AbortSignal } = {},
  ): Promise<void> {
    return this.#exclusive(async () => {
      const { socket, reader } = await this.#connection(record.job, options.signal);
      const sendOptions = {
        ...(options.pace === undefined ? {} : { pace: options.pace }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      };
      let data: Socket | null = null;
      const onAbort = (): void => {
        socket.destroy();
        data?.destroy();
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        if (this.#offers) {
          const listener = await this.#payloadListener(socket);
          const { ticket, connection, cancel } = listener.expect();
          await sendFrame(socket, {
            op: 'offer-shard',
            record,
            setRanks,
            port: listener.port,
            ticket,
          });
          // The peer either dials in for the bytes or answers at once (it could not connect).
          const replied = reader.next();
          // Awaited below unless the dial-in fails first; never an unhandled rejection.
          replied.catch(() => undefined);
          const first = await Promise.race([
            connection.then((dialed) => ({ kind: 'dialed' as const, dialed })),
            replied.then((reply) => ({ kind: 'replied' as const, reply })),
          ]);
          if (first.kind === 'dialed') {
            data = first.dialed;
            await this.#sendOffered(data, record.bytes, payload, sendOptions);
            const reply = await replied;
            if (reply === null) throw new CubeError('INFEASIBLE', `peer ${this.peer.node} hung up`);
            if (reply.header.op !== 'ok') throw replyError(this.peer, reply.header);
            return;
          }
          cancel();
          const header = first.reply?.header;
          if (header === undefined)
            throw new CubeError('INFEASIBLE', `peer ${this.peer.node} hung up`);
          if (header.op === 'ok')
            throw new CubeError('INTERNAL', `peer ${this.peer.node} stored a shard it never got`);
          // A peer that predates offers rejects the request; one that cannot connect says so.
          const pushInstead =
            header.dialBack === 'failed' ||
            (header.code === 'INVALID_VALUE' &&
              String(header.message).startsWith('bad peer request'));
          if (!pushInstead) throw replyError(this.peer, header);
          this.#offers = false;
        }
        await sendFrame(
          socket,
          { op: 'put-shard', record, setRanks, bytes: record.bytes },
          payload,
          sendOptions,
        );
        const reply = await reader.next();
        if (reply === null) throw new CubeError('INFEASIBLE', `peer ${this.peer.node} hung up`);
        if (reply.header.op !== 'ok') throw replyError(this.peer, reply.header);
      } catch (error) {
        this.#drop(record.job);
        throw error;
      } finally {
        data?.destroy();
        options.signal?.removeEventListener('abort', onAbort);
      }
    });
  }

  /**
   * Streams an offered shard's bytes on the connection the peer dialed. A failure here is
   * swallowed when the peer then replies: it knows why it stopped reading (a full disk, a
   * checksum), and its reply says so.
   */
  async #sendOffered(
    data: Socket,
    bytes: number,
    payload: AsyncIterable<Uint8Array>,
    options: { pace?: (bytes: number) => Promise<void>; signal?: AbortSignal },
  ): Promise<void> {
    try {
      await sendPayload(data, bytes, payload, options);
      data.end();
    } catch (error) {
      data.destroy();
      if (options.signal?.aborted === true) throw error;
      if (error instanceof CubeError && error.code === 'INTERNAL') throw error;
    }
  }

  async #payloadListener(socket: Socket): Promise<PayloadListener> {
    // A client closed while a put was on its way must not open a listener nobody closes.
    if (this.#closed)
      throw new CubeError('INFEASIBLE', `connection to peer ${this.peer.node} closed`);
    if (this.#listener === null) {
      // The address the peer reached this node on is one it can connect back to.
      const host = socket.localAddress;
      if (host === undefined)
        throw new CubeError('INTERNAL', 'connection to the peer has no local address');
      this.#listener = PayloadListener.listen(host);
      this.#listener.catch(() => (this.#listener = null));
    }
    return this.#listener;
  }

  /** The committed replicas of `job` the peer holds. */
  list(job: string, options: { signal?: AbortSignal } = {}): Promise<ReplicaHolding[]> {
    return this.#exclusive(async () => {
      const { socket, reader } = await this.#connection(job, options.signal);
      try {
        await sendFrame(socket, { op: 'list', job });
        const reply = await reader.next();
        if (reply === null) throw new CubeError('INFEASIBLE', `peer ${this.peer.node} hung up`);
        if (reply.header.op !== 'ok') throw replyError(this.peer, reply.header);
        return reply.header.holdings as ReplicaHolding[];
      } catch (error) {
        this.#drop(job);
        throw error;
      }
    });
  }

  /** H3: asks the peer to remove its abandoned replicas of `job` (prune.ts); returns what went. */
  prune(
    job: string,
    request: PruneRequest,
    options: { signal?: AbortSignal } = {},
  ): Promise<PrunedStep[]> {
    return this.#exclusive(async () => {
      const { socket, reader } = await this.#connection(job, options.signal);
      try {
        await sendFrame(socket, { op: 'prune', job, ...request });
        const reply = await reader.next();
        if (reply === null) throw new CubeError('INFEASIBLE', `peer ${this.peer.node} hung up`);
        if (reply.header.op !== 'ok') throw replyError(this.peer, reply.header);
        return reply.header.pruned as PrunedStep[];
      } catch (error) {
        this.#drop(job);
        throw error;
      }
    });
  }

  /** The record of a committed shard the peer holds. */
  record(
    job: string,
    step: number,
    rank: number,
    options: { signal?: AbortSignal } = {},
  ): Promise<ShardRecord> {
    return this.#exclusive(async () => {
      const { socket, reader } = await this.#connection(job, options.signal);
      try {
        await sendFrame(socket, { op: 'get-record', job, step, rank });
        const reply = await reader.next();
        if (reply === null) throw new CubeError('INFEASIBLE', `peer ${this.peer.node} hung up`);
        if (reply.header.op !== 'ok') throw replyError(this.peer, reply.header);
        return shardRecordSchema.parse(reply.header.record);
      } catch (error) {
        if (!(error instanceof CubeError && error.code === 'FILE_NOT_FOUND')) this.#drop(job);
        throw error;
      }
    });
  }

  /**
   * Streams one shard from the peer (its L1 or L2). The caller must consume `payload`; the
   * connection closes when it is done or `close()` is called.
   */
  async getShard(
    job: string,
    step: number,
    rank: number,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ bytes: number; xxh3: string; payload: AsyncIterable<Buffer>; close: () => void }> {
    const { socket, reader } = await openAuthenticated(
      this.peer,
      job,
      this.#options,
      options.signal,
    );
    try {
      await sendFrame(socket, { op: 'get-shard', job, step, rank });
      const reply = await reader.next();
      if (reply === null) throw new CubeError('INFEASIBLE', `peer ${this.peer.node} hung up`);
      if (reply.header.op !== 'ok' || reply.payload === null)
        throw replyError(this.peer, reply.header);
      const payload = reply.payload;
      async function* thenClose(): AsyncGenerator<Buffer> {
        try {
          yield* payload;
        } finally {
          socket.end();
        }
      }
      return {
        bytes: Number(reply.header.bytes),
        xxh3: String(reply.header.xxh3),
        payload: thenClose(),
        close: () => socket.destroy(),
      };
    } catch (error) {
      socket.destroy();
      throw error;
    }
  }

  close(): void {
    this.#closed = true;
    for (const job of [...this.#connections.keys()]) this.#drop(job);
    const listener = this.#listener;
    this.#listener = null;
    void listener?.then((l) => l.close()).catch(() => undefined);
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const guarded = async (): Promise<T> => {
      this.#busy = true;
      try {
        return await work();
      } finally {
        this.#busy = false;
      }
    };
    const run = this.#queue.then(guarded, guarded);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** The authenticated connection for `job`, opened (or reopened for a newer attempt) as needed. */
  async #connection(
    job: string,
    signal?: AbortSignal,
  ): Promise<{ socket: Socket; reader: FrameReader }> {
    const held = this.#connections.get(job);
    const attempt = this.#options.credential(job)?.attempt;
    if (held !== undefined && !held.socket.destroyed && held.attempt === attempt) return held;
    this.#drop(job);
    const connection = await openAuthenticated(this.peer, job, this.#options, signal);
    const { socket } = connection;
    socket.on('error', () => this.#drop(job, socket));
    socket.on('close', () => this.#drop(job, socket));
    const idleMs = this.#options.idleTimeoutMs ?? 30_000;
    socket.setTimeout(idleMs, () => {
      if (this.#busy) socket.setTimeout(idleMs);
      else this.#drop(job, socket);
    });
    this.#connections.set(job, connection);
    return connection;
  }

  /** Closes the connection of `job` (only if it is still `socket`, when given). */
  #drop(job: string, socket?: Socket): void {
    const held = this.#connections.get(job);
    if (held === undefined || (socket !== undefined && held.socket !== socket)) return;
    this.#connections.delete(job);
    held.socket.destroy();
  }
}
