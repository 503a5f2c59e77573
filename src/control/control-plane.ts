import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { CubeError, ensurePrivateDir } from '../core/index.ts';
import { CommandOutbox } from './orchestrator/commands.ts';
import { Orchestrator } from './orchestrator/orchestrator.ts';
import { loadPeerMasterKey } from './peer-master-key.ts';
import { routeAccessTable, type RouteAccess } from './server/access.ts';
import { buildControlApp } from './server/app.ts';
import { createMetrics } from './server/metrics.ts';
import { makePrivate, writeSecretFileSync } from './private-files.ts';
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
  /** Serve `/metrics` without a token (`--metrics-public`). */
  readonly metricsPublic?: boolean;
  /** Accept fault injection (`--allow-fault-injection`; the demo and tests turn it on). */
  readonly allowFaultInjection?: boolean;
  /** The cap of one rank log, current and rotated file together (default 64 MiB). */
  readonly rankLogMaxBytes?: number;
  /** Serve HTTPS with this PEM certificate (chain) and key. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
}

/** Where the operator's tokens are kept in a data directory. */
export function adminTokensPath(dataDir: string): string {
  return join(dataDir, 'admin-tokens.json');
}

/** Reads the operator's tokens that `cube server` keeps in its data directory. */
export function readAdminTokens(dataDir: string): AdminTokens {
  const path = adminTokensPath(dataDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new CubeError('FILE_NOT_FOUND', `cannot read the admin tokens file ${path}`, {
      cause,
      where: { file: path },
      hint: 'the control plane writes it on its first start in that data directory',
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw tornTokens(path, cause);
  }
  const parsed = tokensSchema.safeParse(json);
  if (!parsed.success) throw tornTokens(path, parsed.error);
  return parsed.data;
}

function tornTokens(path: string, cause: unknown): CubeError {
  return new CubeError('CORRUPT_DATA', `the admin tokens file ${path} is not valid JSON tokens`, {
    cause,
    where: { file: path },
    hint: `move it aside: the next start writes new tokens (the old ones stay valid until \`cube token revoke\`)`,
  });
}

const tokensSchema = z.object({ apiToken: z.string(), joinToken: z.string() });
export type AdminTokens = z.infer<typeof tokensSchema>;

/**
 * The tokens an operator needs, created on the first start of a data directory and kept in
 * `<dataDir>/admin-tokens.json` (0600, written atomically); the database keeps only their
 * hashes. A file that is there but torn is an error naming it (never silently replaced: that
 * would hand out a new admin token unnoticed); a file whose tokens were revoked is renewed.
 */
async function adminTokens(store: StateStore, dataDir: string): Promise<AdminTokens> {
  const path = adminTokensPath(dataDir);
  if (existsSync(path)) {
    const saved = readAdminTokens(dataDir);
    makePrivate([path]);
    const api = await store.authenticateApiToken(saved.apiToken);
    if (api?.role === 'admin' && (await store.verifyJoinToken(saved.joinToken))) return saved;
  }
  const tokens = {
    apiToken: (await store.createApiToken('admin', { role: 'admin' })).token,
    joinToken: (await store.createJoinToken('agents')).token,
  };
  writeSecretFileSync(path, `${JSON.stringify(tokens, null, 2)}\n`);
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
    ensurePrivateDir(options.dataDir, { what: 'data directory', field: '--data-dir' });
    const dbPath = join(options.dataDir, 'cube.db');
    const store = await openSqliteStore({ path: dbPath });
    makePrivate([dbPath, `${dbPath}-wal`, `${dbPath}-shm`]);
    let tokens: AdminTokens;
    try {
      tokens = await adminTokens(store, options.dataDir);
    } catch (error) {
      await store.close();
      throw error;
    }
    const metrics = createMetrics({ store });
    const orchestrator = new Orchestrator({
      store,
      metrics,
      outbox: new CommandOutbox(),
      dataDir: options.dataDir,
      peerMasterKey: loadPeerMasterKey(options.dataDir),
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
      ...(options.metricsPublic === undefined ? {} : { metricsPublic: options.metricsPublic }),
      ...(options.allowFaultInjection === undefined
        ? {}
        : { allowFaultInjection: options.allowFaultInjection }),
      ...(options.rankLogMaxBytes === undefined
        ? {}
        : { rankLogMaxBytes: options.rankLogMaxBytes }),
      ...(options.tls === undefined ? {} : { https: options.tls }),
    });
    const address = await app.listen({
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 0,
    });
    orchestrator.serving();
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

  /** Every route of the HTTP API with its access rule (for the route table test). */
  routes(): readonly RouteAccess[] {
    return routeAccessTable(this.#app);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#app.close();
    await this.store.close();
  }
}
