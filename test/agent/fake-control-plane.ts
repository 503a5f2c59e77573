// A small fake of the control plane's agent API (docs/control-protocol.md, "Agent ⇄ control
// plane"): real HTTP on 127.0.0.1, recording every join, heartbeat, event and log chunk, and
// answering heartbeats with the commands a test queued.
import { fastify, type FastifyInstance } from 'fastify';
import {
  eventsRequestSchema,
  heartbeatRequestSchema,
  joinRequestSchema,
  logChunkSchema,
  type AgentEvent,
  type HeartbeatRequest,
  type JoinRequest,
  type LogChunk,
} from '../../src/agent/index.ts';

export interface FakeNode {
  readonly nodeId: string;
  readonly name: string;
  credential: string;
}

export class FakeControlPlane {
  readonly joinToken = 'join-secret';
  readonly joins: { body: JoinRequest; authorization: string | undefined; nodeId: string }[] = [];
  readonly heartbeats: { nodeId: string; body: HeartbeatRequest }[] = [];
  readonly events: { nodeId: string; event: AgentEvent }[] = [];
  readonly logs: { nodeId: string; chunk: LogChunk }[] = [];
  readonly nodes = new Map<string, FakeNode>();
  /** Answer heartbeats with this status instead (e.g. 503), while set. */
  failHeartbeats: number | null = null;
  #commands = new Map<string, { command: unknown; times: number }[]>();
  #app: FastifyInstance | null = null;
  #port = 0;
  #next = 1;
  readonly #heartbeatIntervalMs: number;

  private constructor(heartbeatIntervalMs: number) {
    this.#heartbeatIntervalMs = heartbeatIntervalMs;
  }

  static async start(options: { heartbeatIntervalMs?: number } = {}): Promise<FakeControlPlane> {
    const cp = new FakeControlPlane(options.heartbeatIntervalMs ?? 100);
    await cp.up();
    return cp;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Delivers `command` to the node in its next heartbeat reply (`times` replies in a row). */
  queue(nodeId: string, command: unknown, times = 1): void {
    const list = this.#commands.get(nodeId) ?? [];
    list.push({ command, times });
    this.#commands.set(nodeId, list);
  }

  eventsOf<K extends AgentEvent['kind']>(kind: K): Extract<AgentEvent, { kind: K }>[] {
    return this.events
      .map((e) => e.event)
      .filter((e): e is Extract<AgentEvent, { kind: K }> => e.kind === kind);
  }

  logText(jobId: string, rank: number, stream?: 'stdout' | 'stderr'): string {
    return this.logs
      .map((l) => l.chunk)
      .filter(
        (c) =>
          c.jobId === jobId && c.rank === rank && (stream === undefined || c.stream === stream),
      )
      .map((c) => c.text)
      .join('');
  }

  /** Forgets every node (as a control plane that lost its state): old credentials get 401. */
  forgetNodes(): void {
    this.nodes.clear();
  }

  async up(): Promise<void> {
    const app = fastify({ logger: false });
    app.post('/api/v1/agents/join', (request, reply) => {
      const body = joinRequestSchema.parse(request.body);
      const authorization = request.headers.authorization;
      const presented = authorization?.replace(/^Bearer /, '');
      const known = [...this.nodes.values()].find((n) => n.name === body.name);
      if (presented !== undefined && (known === undefined || known.credential !== presented))
        return reply
          .status(401)
          .send({ error: { code: 'UNAUTHORIZED', message: 'unknown credential' } });
      if (presented === undefined && body.joinToken !== this.joinToken)
        return reply
          .status(401)
          .send({ error: { code: 'UNAUTHORIZED', message: 'bad join token' } });
      const node: FakeNode =
        presented !== undefined && known !== undefined
          ? known
          : {
              nodeId: `n-${this.#next++}`,
              name: body.name,
              credential: `cred-${Math.random().toString(36).slice(2)}`,
            };
      this.nodes.set(node.nodeId, node);
      this.joins.push({ body, authorization, nodeId: node.nodeId });
      return {
        nodeId: node.nodeId,
        credential: node.credential,
        heartbeatIntervalMs: this.#heartbeatIntervalMs,
      };
    });
    const authorized = (nodeId: string, authorization: string | undefined): boolean =>
      this.nodes.get(nodeId)?.credential === authorization?.replace(/^Bearer /, '');
    app.post<{ Params: { id: string } }>('/api/v1/agents/:id/heartbeat', (request, reply) => {
      if (!authorized(request.params.id, request.headers.authorization))
        return reply.status(401).send({ error: { code: 'UNAUTHORIZED' } });
      if (this.failHeartbeats !== null) return reply.status(this.failHeartbeats).send({});
      this.heartbeats.push({
        nodeId: request.params.id,
        body: heartbeatRequestSchema.parse(request.body),
      });
      // Every queued command goes out once per reply, as many replies as it was queued for.
      const queued = this.#commands.get(request.params.id) ?? [];
      for (const q of queued) q.times -= 1;
      this.#commands.set(
        request.params.id,
        queued.filter((q) => q.times > 0),
      );
      return { commands: queued.map((q) => q.command) };
    });
    app.post<{ Params: { id: string } }>('/api/v1/agents/:id/events', (request, reply) => {
      if (!authorized(request.params.id, request.headers.authorization))
        return reply.status(401).send({ error: { code: 'UNAUTHORIZED' } });
      for (const event of eventsRequestSchema.parse(request.body).events)
        this.events.push({ nodeId: request.params.id, event });
      return { ok: true };
    });
    app.post<{ Params: { id: string } }>('/api/v1/agents/:id/logs', (request, reply) => {
      if (!authorized(request.params.id, request.headers.authorization))
        return reply.status(401).send({ error: { code: 'UNAUTHORIZED' } });
      this.logs.push({ nodeId: request.params.id, chunk: logChunkSchema.parse(request.body) });
      return { ok: true };
    });
    await app.listen({ host: '127.0.0.1', port: this.#port });
    const address = app.server.address();
    this.#port = typeof address === 'object' && address !== null ? address.port : 0;
    this.#app = app;
  }

  /** Stops answering (as a control plane that went down); `up()` brings it back on the same port. */
  async down(): Promise<void> {
    await this.#app?.close();
    this.#app = null;
  }

  async close(): Promise<void> {
    await this.down();
  }
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline || options.signal?.aborted === true)
      throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
