import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy between one agent and the control plane, so a campaign can cut that agent off
 * (an agent ↔ control plane partition) while it and its ranks keep running, then heal it.
 * While partitioned, open connections are destroyed and new ones are refused (closed at once).
 */
export class PartitionProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #target: () => number;
  #partitioned = false;
  #port = 0;

  /** `targetPort` is read at each connection: a restarted control plane may move. */
  constructor(targetPort: () => number) {
    this.#target = targetPort;
    this.#server = createServer((client) => this.#accept(client));
  }

  get port(): number {
    return this.#port;
  }

  get partitioned(): boolean {
    return this.#partitioned;
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    const address = this.#server.address();
    this.#port = typeof address === 'object' && address !== null ? address.port : 0;
  }

  /** Cuts the agent off: every open connection is destroyed, new ones are refused. */
  partition(): void {
    this.#partitioned = true;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  heal(): void {
    this.#partitioned = false;
  }

  async close(): Promise<void> {
    this.partition();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    if (this.#partitioned) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: this.#target() });
    this.#sockets.add(client);
    this.#sockets.add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
