import { connect, type Socket } from 'node:net';
import { CubeError, type CubeErrorCode, errorCodes } from '../../core/index.ts';
import { shardRecordSchema, type ShardRecord } from '../schemas.ts';
import { FrameReader, sendFrame, type FrameHeader } from './frames.ts';
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

  constructor(peer: PeerAddress) {
    this.peer = peer;
  }

  /** Sends one shard as a replica and resolves when the peer has verified and stored it. */
  putShard(
    record: ShardRecord,
    setRanks: readonly number[],
    payload: AsyncIterable<Uint8Array>,
    options: { pace?: (bytes: number) => Promise<void>; signal?: AbortSignal } = {},
  ): Promise<void> {
    return this.#exclusive(async () => {
      const { socket, reader } = await this.#connection(options.signal);
      const onAbort = (): void => {
        socket.destroy();
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        await sendFrame(
          socket,
          { op: 'put-shard', record, setRanks, bytes: record.bytes },
          payload,
          {
            ...(options.pace === undefined ? {} : { pace: options.pace }),
            ...(options.signal === undefined ? {} : { signal: options.signal }),
          },
        );
        const reply = await reader.next();
        if (reply === null) throw new CubeError('INFEASIBLE', `peer ${this.peer.node} hung up`);
        if (reply.header.op !== 'ok') throw replyError(this.peer, reply.header);
      } catch (error) {
        this.#drop();
        throw error;
      } finally {
        options.signal?.removeEventListener('abort', onAbort);
      }
    });
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
    this.#drop();
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
