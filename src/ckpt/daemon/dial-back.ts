import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { z } from 'zod';
import { CubeError } from '../../core/index.ts';
import { FrameReader, sendFrame } from './frames.ts';
import { StagedReceive, type StagingBuffers } from './staged-receive.ts';

/**
 * Replica payloads over a connection the receiver dials (docs/checkpoint-format.md,
 * "Daemon-to-daemon replication"). The sender offers a shard on its connection to the peer,
 * naming a port of its own and a one-time ticket; the peer connects there, presents the ticket
 * and reads the bytes. Only a connecting socket can read into one reused buffer (`onread`), and
 * that halves the receiver's cost per byte against an accepted socket's fresh 64 KiB reads.
 */

const fetchFrameSchema = z.object({ op: z.literal('fetch'), ticket: z.string().min(16).max(64) });

/** How long a dialed-in connection may take to present its ticket. */
const admitTimeoutMs = 10_000;

/** How long a ticket waits for its peer to dial in. */
const defaultTicketTimeoutMs = 30_000;

/** The sender's side: a listener that hands each dialed-in connection to its ticket's owner. */
export class PayloadListener {
  readonly #server: Server;
  readonly #waiting = new Map<string, (socket: Socket) => void>();
  readonly #sockets = new Set<Socket>();
  readonly port: number;

  private constructor(server: Server, port: number) {
    this.#server = server;
    this.port = port;
  }

  /** Listens on `host` (the address the peer reached this node on), any free port. */
  static async listen(host: string): Promise<PayloadListener> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address === 'string')
      throw new CubeError('INTERNAL', 'payload listener has no TCP address');
    const listener = new PayloadListener(server, address.port);
    server.on('connection', (socket) => void listener.#admit(socket));
    return listener;
  }

  /** A fresh ticket and the connection that presents it (rejects after `timeoutMs`). */
  expect(timeoutMs = defaultTicketTimeoutMs): {
    ticket: string;
    connection: Promise<Socket>;
    cancel: () => void;
  } {
    const ticket = randomBytes(16).toString('hex');
    let cancel = (): void => undefined;
    const connection = new Promise<Socket>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(ticket);
        reject(new CubeError('INFEASIBLE', `no peer connection for a payload in ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      cancel = () => {
        clearTimeout(timer);
        this.#waiting.delete(ticket);
      };
      this.#waiting.set(ticket, (socket) => {
        clearTimeout(timer);
        resolve(socket);
      });
    });
    // A cancelled ticket's connection is never awaited.
    connection.catch(() => undefined);
    return { ticket, connection, cancel };
  }

  async #admit(socket: Socket): Promise<void> {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setNoDelay(true);
    // Anyone can connect here: one that presents no ticket soon is closed.
    const timer = setTimeout(() => socket.destroy(), admitTimeoutMs);
    try {
      const frame = await new FrameReader(socket).next();
      clearTimeout(timer);
      const parsed = fetchFrameSchema.safeParse(frame?.header);
      const owner = parsed.success ? this.#waiting.get(parsed.data.ticket) : undefined;
      if (!parsed.success || owner === undefined) {
        socket.destroy();
        return;
      }
      this.#waiting.delete(parsed.data.ticket);
      owner(socket);
    } catch {
      clearTimeout(timer);
      socket.destroy();
    }
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/**
 * The receiver's side: connects to `host:port`, presents `ticket` and yields exactly `bytes`
 * bytes in chunks that stay valid until the one after next is asked for. The caller must call
 * `close()` once done, read or not.
 */
export async function fetchPayload(
  target: { host: string; port: number; ticket: string; bytes: number },
  buffers: StagingBuffers,
  options: { connectTimeoutMs?: number } = {},
): Promise<{ chunks: AsyncGenerator<Buffer>; close: () => void }> {
  const receive = new StagedReceive(target.bytes, buffers);
  const socket = connect({ host: target.host, port: target.port, onread: receive.onread });
  socket.setNoDelay(true);
  receive.resumeWith = () => socket.resume();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new CubeError(
          'INFEASIBLE',
          `cannot connect back to ${target.host}:${target.port} within ${options.connectTimeoutMs ?? 10_000} ms`,
        ),
      );
    }, options.connectTimeoutMs ?? 10_000);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('error', (cause) => {
      clearTimeout(timer);
      reject(
        new CubeError(
          'INFEASIBLE',
          `cannot connect back to ${target.host}:${target.port}: ${cause.message}`,
          { cause },
        ),
      );
    });
  });
  const early = (): void =>
    receive.fail(
      new CubeError(
        'FILE_UNREADABLE',
        `the sender closed the connection after ${receive.received} of ${target.bytes} bytes`,
      ),
    );
  socket.on('end', early);
  socket.on('close', early);
  socket.on('error', (cause) =>
    receive.fail(new CubeError('FILE_UNREADABLE', `receiving failed: ${cause.message}`)),
  );
  try {
    await sendFrame(socket, { op: 'fetch', ticket: target.ticket });
  } catch (error) {
    socket.destroy();
    throw error;
  }
  return { chunks: receive.chunks(), close: () => socket.destroy() };
}
