import { connect, type Socket } from 'node:net';
import { CubeError, type CubeErrorCode, errorCodes } from '../../core/index.ts';
import { shardRecordSchema, type ShardRecord } from '../schemas.ts';
import { PayloadListener } from './dial-back.ts';
import { FrameReader, sendFrame, sendPayload, type FrameHeader } from './frames.ts';
import type { ReplicaHolding } from './peer-protocol.ts';

/** Where a peer daemon listens for replication traffic. */
export interface PeerAddress {
  readonly node: string;
  readonly host: string;
  readonly port: number;
}

function replyError(peer: PeerAddress, header: FrameHeader): CubeError {
  const code =
    typeof header.code === 'string' && header.code in errorCodes ? header.code : 'INTERNAL';
  return new CubeError(code as CubeErrorCode, `peer ${peer.node}: ${String(header.message)}`, {
    where: { node: peer.node },
  });
}

async function open(peer: PeerAddress, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: peer.host, port: peer.port });
    socket.setNoDelay(true);
    const onAbort = (): void => {
      socket.destroy();
      reject(new CubeError('INFEASIBLE', `connecting to peer ${peer.node} was aborted`));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal?.removeEventListener('abort', onAbort);
      resolve(socket);
    });
    socket.once('error', (cause) => {
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

/**
 * A connection to one peer daemon. Requests on it run one at a time (replication is a single
 * ordered stream per peer); `getShard` uses its own connection so a restore streaming a large
 * shard never waits behind replication.
 */
export class PeerClient {
  readonly peer: PeerAddress;
  #socket: Socket | null = null;
  #reader: FrameReader | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  /** False once the peer could not connect back (or predates offers): replicas are pushed. */
  #offers = true;
  #listener: Promise<PayloadListener> | null = null;
  #closed = false;

  constructor(peer: PeerAddress) {
    this.peer = peer;
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
      const { socket, reader } = await this.#connection(options.signal);
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
        this.#drop();
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
      const { socket, reader } = await this.#connection(options.signal);
      try {
        await sendFrame(socket, { op: 'list', job });
        const reply = await reader.next();
        if (reply === null) throw new CubeError('INFEASIBLE', `peer ${this.peer.node} hung up`);
        if (reply.header.op !== 'ok') throw replyError(this.peer, reply.header);
        return reply.header.holdings as ReplicaHolding[];
      } catch (error) {
        this.#drop();
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
      const { socket, reader } = await this.#connection(options.signal);
      try {
        await sendFrame(socket, { op: 'get-record', job, step, rank });
        const reply = await reader.next();
        if (reply === null) throw new CubeError('INFEASIBLE', `peer ${this.peer.node} hung up`);
        if (reply.header.op !== 'ok') throw replyError(this.peer, reply.header);
        return shardRecordSchema.parse(reply.header.record);
      } catch (error) {
        if (!(error instanceof CubeError && error.code === 'FILE_NOT_FOUND')) this.#drop();
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
    const socket = await open(this.peer, options.signal);
    const reader = new FrameReader(socket);
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
    this.#drop();
    const listener = this.#listener;
    this.#listener = null;
    void listener?.then((l) => l.close()).catch(() => undefined);
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work, work);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #connection(signal?: AbortSignal): Promise<{ socket: Socket; reader: FrameReader }> {
    if (this.#socket === null || this.#reader === null || this.#socket.destroyed) {
      const socket = await open(this.peer, signal);
      socket.on('error', () => this.#drop());
      socket.on('close', () => {
        if (this.#socket === socket) this.#drop();
      });
      this.#socket = socket;
      this.#reader = new FrameReader(socket);
    }
    return { socket: this.#socket, reader: this.#reader };
  }

  #drop(): void {
    this.#socket?.destroy();
    this.#socket = null;
    this.#reader = null;
  }
}
