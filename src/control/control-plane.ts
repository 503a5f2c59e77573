import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { CommandOutbox } from './orchestrator/commands.ts';
import { Orchestrator } from './orchestrator/orchestrator.ts';
import { buildControlApp } from './server/app.ts';
import { createMetrics } from './server/metrics.ts';
import { openSqliteStore, type StateStore } from './store/index.ts';

export interface ControlPlaneOptions {
  /** Holds `cube.db`, rank logs, and (by default) L3 checkpoints. */
  readonly dataDir: string;
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  readonly heartbeatTimeoutMs?: number;
  readonly heartbeatIntervalMs?: number;
  /** How often the control loop runs (default 250 ms). */
  readonly tickMs?: number;
}

const tokensSchema = z.object({ apiToken: z.string(), joinToken: z.string() });
export type AdminTokens = z.infer<typeof tokensSchema>;

/**
 * The tokens an operator needs, created on the first start of a data directory and kept in
 * `<dataDir>/admin-tokens.json` (0600); the database keeps only their hashes.
 */
async function adminTokens(store: StateStore, dataDir: string): Promise<AdminTokens> {
  const path = join(dataDir, 'admin-tokens.json');
  if (existsSync(path)) {
    const saved = tokensSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
    if (
      (await store.verifyApiToken(saved.apiToken)) &&
      (await store.verifyJoinToken(saved.joinToken))
    )
      return saved;
  }
  const tokens = {
    apiToken: (await store.createApiToken('admin')).token,
    joinToken: (await store.createJoinToken('agents')).token,
  };
  writeFileSync(path, `${JSON.stringify(tokens, null, 2)}\n`, { mode: 0o600 });
  return tokens;
}

/** The control plane: the store, the control loop and the HTTP API, as one lifecycle. */
export class ControlPlane {
  readonly store: StateStore;
  readonly orchestrator: Orchestrator;
  readonly tokens: AdminTokens;
  readonly url: string;
  readonly #app: FastifyInstance;
  readonly #timer: NodeJS.Timeout;

  private constructor(parts: {
    store: StateStore;
    orchestrator: Orchestrator;
    tokens: AdminTokens;
    url: string;
    app: FastifyInstance;
    timer: NodeJS.Timeout;
  }) {
    this.store = parts.store;
    this.orchestrator = parts.orchestrator;
    this.tokens = parts.tokens;
    this.url = parts.url;
    this.#app = parts.app;
    this.#timer = parts.timer;
  }

  static async start(options: ControlPlaneOptions): Promise<ControlPlane> {
    mkdirSync(options.dataDir, { recursive: true });
    const store = await openSqliteStore({ path: join(options.dataDir, 'cube.db') });
    const tokens = await adminTokens(store, options.dataDir);
    const metrics = createMetrics();
    const orchestrator = new Orchestrator({
      store,
      metrics,
      outbox: new CommandOutbox(),
      dataDir: options.dataDir,
      ...(options.heartbeatTimeoutMs === undefined
        ? {}
        : { heartbeatTimeoutMs: options.heartbeatTimeoutMs }),
      ...(options.heartbeatIntervalMs === undefined
        ? {}
        : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
    });
    const app = await buildControlApp({
      store,
      orchestrator,
      metrics,
      dataDir: options.dataDir,
      ...(options.heartbeatIntervalMs === undefined
        ? {}
        : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
    });
    const address = await app.listen({
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 0,
    });
    const timer = setInterval(() => {
      orchestrator.tick().catch((error: unknown) => {
        process.stderr.write(
          `cube control loop: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
        );
      });
    }, options.tickMs ?? 250);
    return new ControlPlane({
      store,
      orchestrator,
      tokens,
      url: address.replace('[::1]', '127.0.0.1'),
      app,
      timer,
    });
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#app.close();
    await this.store.close();
  }
}
