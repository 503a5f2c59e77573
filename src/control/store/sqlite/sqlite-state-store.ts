import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, Migrator, type Selectable, type Transaction, type Updateable } from 'kysely';
import type { z } from 'zod';
import { CubeError, schemaError, unknownIdError } from '../../../core/index.ts';
import {
  CheckpointRecordSchema,
  EventBodySchema,
  JobSpecSchema,
  newJobId,
  newNodeId,
  ProgressSampleSchema,
  randomId,
  worldSizeOf,
  type CheckpointRecord,
  type Event,
  type Job,
  type JobSpec,
  type JobState,
  type NewEvent,
  type Node,
  type NodeState,
  type ProgressSample,
} from '../../model/index.ts';
import { JobPatchSchema, NodeJoinSchema, NodePatchSchema } from '../patches.ts';
import { hashSecret, newSecret, secretMatches } from '../secrets.ts';
import type {
  ApiRole,
  ApiTokenInfo,
  CheckpointEntry,
  EventFilter,
  EventListener,
  JobPatch,
  NodeJoin,
  NodeJoinResult,
  NodePatch,
  ProgressFilter,
  StateStore,
} from '../state-store.ts';
import { ImmediateSqliteDialect } from './sqlite-dialect.ts';
import { sqliteMigrationProvider } from './sqlite-migrations.ts';
import { eventFromRow, jobFromRow, nodeFromRow, progressFromRow } from './sqlite-rows.ts';
import type { EventsTable, JobsTable, NodesTable, StoreTables } from './sqlite-tables.ts';

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions {
  /** The database file (its directory is created), or `:memory:` for a store that dies with it. */
  readonly path: string;
  /** The clock for times the caller does not give, epoch ms; default `Date.now`. */
  readonly now?: () => number;
  /** How long a write waits for another process's lock before failing; default 5000. */
  readonly busyTimeoutMs?: number;
}

/** The connection settings that make writes durable, as SQLite reports them. */
export interface SqliteSettings {
  readonly journalMode: string;
  /** 2 is FULL: each commit is fsynced before it returns. */
  readonly synchronous: number;
  readonly foreignKeys: boolean;
}

type Trx = Transaction<StoreTables>;

// SQLite allows 32766 bound parameters per statement; progress rows bind 7 each.
const progressBatchRows = 1000;

/**
 * Opens (creating and migrating as needed) the SQLite state store at `options.path`: WAL
 * journal, `synchronous = FULL`, foreign keys on.
 */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteStateStore> {
  return SqliteStateStore.open(options);
}

/** {@link StateStore} on one SQLite database through Kysely and better-sqlite3. */
export class SqliteStateStore implements StateStore {
  readonly #db: Kysely<StoreTables>;
  readonly #sqlite: Database.Database;
  readonly #path: string;
  readonly #now: () => number;
  readonly #listeners = new Set<EventListener>();
  /**
   * Every node, in join order, with its credential hash: read once, then kept in step with this
   * store's own writes (after they commit), so heartbeats and the control loop read nodes from
   * memory. The database has one writer, the control plane that opened it.
   */
  #nodes: Map<string, { node: Node; credentialHash: string }> | null = null;
  #insertEvent: Database.Statement | null = null;
  /** Node writes so far: a load that raced one is done again. */
  #nodeWrites = 0;

  private constructor(
    db: Kysely<StoreTables>,
    sqlite: Database.Database,
    path: string,
    now: () => number,
  ) {
    this.#db = db;
    this.#sqlite = sqlite;
    this.#path = path;
    this.#now = now;
  }

  /** See {@link openSqliteStore}. */
  static async open(options: SqliteStoreOptions): Promise<SqliteStateStore> {
    const path = options.path === ':memory:' ? ':memory:' : resolve(options.path);
    let sqlite: Database.Database;
    try {
      if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
      sqlite = new Database(path);
    } catch (cause) {
      throw storageError(`cannot open the state database ${path}`, path, cause);
    }
    try {
      const journalMode = sqlite.pragma('journal_mode = WAL', { simple: true }) as string;
      if (path !== ':memory:' && journalMode !== 'wal') {
        throw new CubeError(
          'STORAGE_FAILED',
          `the state database ${path} cannot use WAL journaling (got ${journalMode})`,
          { where: { file: path }, hint: 'put the data directory on a local filesystem' },
        );
      }
      sqlite.pragma('synchronous = FULL');
      sqlite.pragma('foreign_keys = ON');
      sqlite.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
    } catch (cause) {
      sqlite.close();
      if (cause instanceof CubeError) throw cause;
      throw storageError(`cannot set up the state database ${path}`, path, cause);
    }
    const db = new Kysely<StoreTables>({
      dialect: new ImmediateSqliteDialect({ database: sqlite }),
    });
    const migrated = await new Migrator({
      db,
      provider: sqliteMigrationProvider,
    }).migrateToLatest();
    if (migrated.error !== undefined) {
      await db.destroy();
      throw storageError(`cannot migrate the state database ${path}`, path, migrated.error);
    }
    return new SqliteStateStore(db, sqlite, path, options.now ?? Date.now);
  }

  /** The connection's durability settings, for diagnostics and tests. */
  settings(): SqliteSettings {
    return {
      journalMode: this.#sqlite.pragma('journal_mode', { simple: true }) as string,
      synchronous: this.#sqlite.pragma('synchronous', { simple: true }) as number,
      foreignKeys: (this.#sqlite.pragma('foreign_keys', { simple: true }) as number) === 1,
    };
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    await this.#db.destroy();
  }

  // ---- tokens ----

  createApiToken(
    name: string,
    options: { role?: ApiRole } = {},
  ): Promise<{ id: string; token: string }> {
    return this.#createToken('api', name, options.role ?? 'admin');
  }

  verifyApiToken(token: string): Promise<boolean> {
    return this.#verifyToken('api', token);
  }

  async authenticateApiToken(token: string): Promise<ApiTokenInfo | null> {
    if (token === '') return null;
    // The lookup is by hash, so its timing says nothing about the token.
    const row = await this.#read((db) =>
      db
        .selectFrom('tokens')
        .select(['id', 'name', 'role', 'created_at', 'revoked_at'])
        .where('token_hash', '=', hashSecret(token))
        .where('kind', '=', 'api')
        .where('revoked_at', 'is', null)
        .executeTakeFirst(),
    );
    return row === undefined ? null : tokenInfoFromRow(row);
  }

  async listApiTokens(): Promise<ApiTokenInfo[]> {
    const rows = await this.#read((db) =>
      db
        .selectFrom('tokens')
        .select(['id', 'name', 'role', 'created_at', 'revoked_at'])
        .where('kind', '=', 'api')
        .orderBy('created_at')
        .orderBy('id')
        .execute(),
    );
    return rows.map(tokenInfoFromRow);
  }

  async revokeApiToken(idOrName: string): Promise<ApiTokenInfo> {
    return this.#write(async (trx) => {
      const columns = ['id', 'name', 'role', 'created_at', 'revoked_at'] as const;
      const row =
        (await trx
          .selectFrom('tokens')
          .select(columns)
          .where('kind', '=', 'api')
          .where('id', '=', idOrName)
          .executeTakeFirst()) ??
        (await trx
          .selectFrom('tokens')
          .select(columns)
          .where('kind', '=', 'api')
          .where('name', '=', idOrName)
          .where('revoked_at', 'is', null)
          .orderBy('created_at')
          .executeTakeFirst());
      if (row === undefined)
        throw new CubeError('UNKNOWN_ID', `no API token with id or name "${idOrName}"`, {
          where: { field: 'token' },
          hint: '`cube token ls` lists them',
        });
      if (row.revoked_at !== null) return tokenInfoFromRow(row);
      const at = this.#now();
      await trx.updateTable('tokens').set({ revoked_at: at }).where('id', '=', row.id).execute();
      return tokenInfoFromRow({ ...row, revoked_at: at });
    });
  }

  createJoinToken(name: string): Promise<{ id: string; token: string }> {
    return this.#createToken('join', name);
  }

  verifyJoinToken(token: string): Promise<boolean> {
    return this.#verifyToken('join', token);
  }

  async #createToken(
    kind: 'api' | 'join',
    name: string,
    role: ApiRole = 'admin',
  ): Promise<{ id: string; token: string }> {
    const token = newSecret();
    const id = randomId(kind === 'api' ? 'tok' : 'join');
    await this.#write(async (trx) => {
      await trx
        .insertInto('tokens')
        .values({
          id,
          kind,
          name,
          role,
          token_hash: hashSecret(token),
          created_at: this.#now(),
          revoked_at: null,
        })
        .execute();
    });
    return { id, token };
  }

  async #verifyToken(kind: 'api' | 'join', token: string): Promise<boolean> {
    if (token === '') return false;
    // The lookup is by hash, so its timing says nothing about the token.
    const row = await this.#read((db) =>
      db
        .selectFrom('tokens')
        .select('id')
        .where('token_hash', '=', hashSecret(token))
        .where('kind', '=', kind)
        .where('revoked_at', 'is', null)
        .executeTakeFirst(),
    );
    return row !== undefined;
  }

  // ---- nodes ----

  async joinNode(join: NodeJoin): Promise<NodeJoinResult> {
    const result = await this.#joinNode(join);
    this.#nodeWrites += 1;
    if (this.#nodes !== null) {
      const cache = this.#nodes;
      const replaced =
        result.replacesNodeId === null ? undefined : cache.get(result.replacesNodeId);
      if (replaced !== undefined)
        cache.set(replaced.node.id, { ...replaced, node: { ...replaced.node, state: 'left' } });
      cache.set(result.joined.node.id, {
        node: result.joined.node,
        credentialHash: result.credentialHash,
      });
    }
    return result.joined;
  }

  async #joinNode(join: NodeJoin): Promise<{
    joined: NodeJoinResult;
    credentialHash: string;
    replacesNodeId: string | null;
  }> {
    const now = join.now ?? this.#now();
    const checked = NodeJoinSchema.safeParse(join);
    if (!checked.success) throw invalid(checked.error, 'the node join');
    return this.#write(async (trx, append) => {
      const live = await trx
        .selectFrom('nodes')
        .selectAll()
        .where('name', '=', join.name)
        .where('state', '<>', 'left')
        .executeTakeFirst();
      const reports = {
        labels_json: JSON.stringify(join.labels),
        devices_json: JSON.stringify(join.devices),
        host_memory_bytes: join.hostMemoryBytes,
        ...(join.host === undefined ? {} : { host: join.host }),
        ...(join.ckptPeerPort === undefined ? {} : { ckpt_peer_port: join.ckptPeerPort }),
        last_heartbeat_at: now,
        updated_at: now,
      };
      const credential = join.credential ?? null;
      if (
        live !== undefined &&
        credential !== null &&
        secretMatches(credential, live.credential_hash)
      ) {
        await trx
          .updateTable('nodes')
          .set({
            ...reports,
            ...(join.role === undefined ? {} : { role: join.role }),
            // A cordon outlives an agent restart; anything else was the agent being away.
            state: live.state === 'cordoned' ? 'cordoned' : 'ready',
          })
          .where('id', '=', live.id)
          .execute();
        await append([
          {
            kind: 'node-joined',
            nodeId: live.id,
            atMs: now,
            data: { name: join.name, rejoined: true },
          },
        ]);
        return {
          joined: { node: await this.#nodeOrThrow(trx, live.id), credential, rejoined: true },
          credentialHash: live.credential_hash,
          replacesNodeId: null,
        };
      }
      if (live !== undefined && live.state !== 'down') {
        throw new CubeError(
          'INFEASIBLE',
          `node name "${join.name}" is in use by ${live.id} (${live.state}), and the join did not carry its credential`,
          {
            where: { node: live.id, field: 'name' },
            hint: 'rejoin with the credential the node was given, use another name, or wait until the node is down',
          },
        );
      }
      if (live !== undefined) {
        await trx
          .updateTable('nodes')
          .set({ state: 'left', updated_at: now })
          .where('id', '=', live.id)
          .execute();
      }
      const id = await freshId(trx, 'nodes', newNodeId);
      const newCredential = newSecret();
      await trx
        .insertInto('nodes')
        .values({
          id,
          name: join.name,
          state: 'ready',
          role: join.role ?? 'worker',
          host: null,
          ckpt_peer_port: null,
          ...reports,
          credential_hash: hashSecret(newCredential),
          joined_at: now,
          health_json: null,
        })
        .execute();
      await append([
        {
          kind: 'node-joined',
          nodeId: id,
          atMs: now,
          data: {
            name: join.name,
            rejoined: false,
            ...(live === undefined ? {} : { replacesNodeId: live.id }),
          },
        },
      ]);
      return {
        joined: {
          node: await this.#nodeOrThrow(trx, id),
          credential: newCredential,
          rejoined: false,
        },
        credentialHash: hashSecret(newCredential),
        replacesNodeId: live?.id ?? null,
      };
    });
  }

  async authenticateNode(nodeId: string, credential: string): Promise<Node | null> {
    const entry = (await this.#nodeCache()).get(nodeId);
    if (entry === undefined || entry.node.state === 'left') return null;
    return secretMatches(credential, entry.credentialHash) ? entry.node : null;
  }

  async getNode(id: string): Promise<Node | null> {
    return (await this.#nodeCache()).get(id)?.node ?? null;
  }

  async listNodes(filter: { states?: readonly NodeState[] } = {}): Promise<Node[]> {
    const nodes = [...(await this.#nodeCache()).values()].map((e) => e.node);
    const states = filter.states;
    return states === undefined ? nodes : nodes.filter((n) => states.includes(n.state));
  }

  async #nodeCache(): Promise<Map<string, { node: Node; credentialHash: string }>> {
    while (this.#nodes === null) {
      const writes = this.#nodeWrites;
      const rows = await this.#read((db) =>
        db.selectFrom('nodes').selectAll().orderBy('seq').execute(),
      );
      if (this.#nodes !== null || writes !== this.#nodeWrites) continue;
      this.#nodes = new Map(
        rows.map((row) => [
          row.id,
          { node: nodeFromRow(row), credentialHash: row.credential_hash },
        ]),
      );
    }
    return this.#nodes;
  }

  /** After a committed change to a node: the cache takes the node as the transaction left it. */
  #remember(node: Node): void {
    this.#nodeWrites += 1;
    if (this.#nodes === null) return;
    const entry = this.#nodes.get(node.id);
    if (entry === undefined) this.#nodes = null;
    else this.#nodes.set(node.id, { ...entry, node });
  }

  async recordHeartbeats(
    records: readonly { nodeId: string; at: number; health?: Node['health'] }[],
  ): Promise<void> {
    if (records.length === 0) return;
    for (const r of records) {
      const checked = NodePatchSchema.safeParse(
        r.health === undefined
          ? { lastHeartbeatAt: r.at }
          : { lastHeartbeatAt: r.at, health: r.health },
      );
      if (!checked.success) throw invalid(checked.error, `the heartbeat of node ${r.nodeId}`);
    }
    const cache = await this.#nodeCache();
    const unknown = records.find((r) => !cache.has(r.nodeId));
    if (unknown !== undefined)
      throw unknownIdError('node', unknown.nodeId, [...cache.keys()].slice(-200));
    // Thousands of rows every few seconds, and not state changes: one prepared statement, in a
    // transaction committed without an fsync (synchronous=NORMAL; in WAL mode that loses nothing
    // when the process dies, only on power loss, and never corrupts). All of it runs in one
    // synchronous turn while this store's connection is held, so no other transaction can see
    // or commit under the relaxed setting; the next state change's commit syncs the WAL.
    await this.#db.connection().execute(() => {
      try {
        const withHealth = this.#sqlite.prepare(
          'UPDATE nodes SET last_heartbeat_at = ?, health_json = ? WHERE id = ?',
        );
        const timeOnly = this.#sqlite.prepare(
          'UPDATE nodes SET last_heartbeat_at = ? WHERE id = ?',
        );
        this.#sqlite.pragma('synchronous = NORMAL');
        try {
          this.#sqlite
            .transaction(() => {
              for (const r of records)
                if (r.health === undefined) timeOnly.run(r.at, r.nodeId);
                else
                  withHealth.run(
                    r.at,
                    r.health === null ? null : JSON.stringify(r.health),
                    r.nodeId,
                  );
            })
            .immediate();
        } finally {
          this.#sqlite.pragma('synchronous = FULL');
        }
      } catch (cause) {
        const failure = this.#failure(cause);
        return Promise.reject(
          failure instanceof Error ? failure : new CubeError('INTERNAL', String(failure)),
        );
      }
      return Promise.resolve();
    });
    const updated = records.flatMap((r) => {
      const node = this.#nodes?.get(r.nodeId)?.node;
      return node === undefined
        ? []
        : [
            {
              ...node,
              lastHeartbeatAt: r.at,
              health: r.health === undefined ? node.health : r.health,
            },
          ];
    });
    for (const node of updated) this.#remember(node);
  }

  async updateNode(id: string, patch: NodePatch, events: readonly NewEvent[] = []): Promise<Node> {
    const checked = NodePatchSchema.safeParse(patch);
    if (!checked.success) throw invalid(checked.error, `the change to node ${id}`);
    return this.#write(async (trx, append) => {
      const current = await this.#nodeOrThrow(trx, id);
      checkExpected('node', id, current.state, patch.expectState);
      const set: Updateable<NodesTable> = { updated_at: this.#now() };
      if (patch.state !== undefined) set.state = patch.state;
      if (patch.role !== undefined) set.role = patch.role;
      if (patch.labels !== undefined) set.labels_json = JSON.stringify(patch.labels);
      if (patch.devices !== undefined) set.devices_json = JSON.stringify(patch.devices);
      if (patch.hostMemoryBytes !== undefined) set.host_memory_bytes = patch.hostMemoryBytes;
      if (patch.host !== undefined) set.host = patch.host;
      if (patch.ckptPeerPort !== undefined) set.ckpt_peer_port = patch.ckptPeerPort;
      if (patch.lastHeartbeatAt !== undefined) set.last_heartbeat_at = patch.lastHeartbeatAt;
      if (patch.health !== undefined) {
        set.health_json = patch.health === null ? null : JSON.stringify(patch.health);
      }
      await trx.updateTable('nodes').set(set).where('id', '=', id).execute();
      await append(events);
      return this.#nodeOrThrow(trx, id);
    }).then((node) => {
      this.#remember(node);
      return node;
    });
  }

  // ---- jobs ----

  async createJob(spec: JobSpec, options: { now?: number; owner?: string } = {}): Promise<Job> {
    const parsed = JobSpecSchema.safeParse(spec);
    if (!parsed.success) throw invalid(parsed.error, 'the job spec');
    const valid = parsed.data;
    const now = options.now ?? this.#now();
    return this.#write(async (trx, append) => {
      const id = await freshId(trx, 'jobs', newJobId);
      await trx
        .insertInto('jobs')
        .values({
          id,
          name: valid.name,
          state: 'queued',
          priority: valid.priority,
          spec_json: JSON.stringify(valid),
          attempt: 0,
          restarts: 0,
          placement_json: null,
          placement_explanation_json: '[]',
          reason: null,
          created_at: now,
          updated_at: now,
          started_at: null,
          ended_at: null,
          owner: options.owner ?? null,
        })
        .execute();
      await append([
        {
          kind: 'job-submitted',
          jobId: id,
          atMs: now,
          data: { name: valid.name, priority: valid.priority, worldSize: worldSizeOf(valid) },
        },
      ]);
      return this.#jobOrThrow(trx, id);
    });
  }

  async getJob(id: string): Promise<Job | null> {
    const row = await this.#read((db) =>
      db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst(),
    );
    return row === undefined ? null : jobFromRow(row);
  }

  async listJobs(filter: { states?: readonly JobState[] } = {}): Promise<Job[]> {
    if (filter.states?.length === 0) return [];
    const rows = await this.#read((db) => {
      let query = db.selectFrom('jobs').selectAll().orderBy('seq');
      if (filter.states !== undefined) query = query.where('state', 'in', [...filter.states]);
      return query.execute();
    });
    return rows.map(jobFromRow);
  }

  async updateJob(id: string, patch: JobPatch, events: readonly NewEvent[] = []): Promise<Job> {
    const checked = JobPatchSchema.safeParse(patch);
    if (!checked.success) throw invalid(checked.error, `the change to job ${id}`);
    return this.#write(async (trx, append) => {
      const current = await this.#jobOrThrow(trx, id);
      checkExpected('job', id, current.state, patch.expectState);
      const set: Updateable<JobsTable> = { updated_at: this.#now() };
      if (patch.state !== undefined) set.state = patch.state;
      if (patch.attempt !== undefined) set.attempt = patch.attempt;
      if (patch.restarts !== undefined) set.restarts = patch.restarts;
      if (patch.placement !== undefined) {
        set.placement_json = patch.placement === null ? null : JSON.stringify(patch.placement);
      }
      if (patch.placementExplanation !== undefined) {
        set.placement_explanation_json = JSON.stringify(patch.placementExplanation);
      }
      if (patch.reason !== undefined) set.reason = patch.reason;
      if (patch.startedAt !== undefined) set.started_at = patch.startedAt;
      if (patch.endedAt !== undefined) set.ended_at = patch.endedAt;
      await trx.updateTable('jobs').set(set).where('id', '=', id).execute();
      await append(events);
      return this.#jobOrThrow(trx, id);
    });
  }

  // ---- events ----

  async appendEvents(events: readonly NewEvent[]): Promise<Event[]> {
    if (events.length === 0) return [];
    return this.#write((_trx, append) => append(events));
  }

  async listEvents(filter: EventFilter): Promise<Event[]> {
    if (filter.kinds?.length === 0 || filter.limit === 0) return [];
    const rows = await this.#read((db) => {
      let query = db.selectFrom('events').selectAll().orderBy('id');
      if (filter.jobId !== undefined) query = query.where('job_id', '=', filter.jobId);
      if (filter.nodeId !== undefined) query = query.where('node_id', '=', filter.nodeId);
      if (filter.afterId !== undefined) query = query.where('id', '>', filter.afterId);
      if (filter.kinds !== undefined) query = query.where('kind', 'in', [...filter.kinds]);
      if (filter.limit !== undefined) query = query.limit(checkedLimit(filter.limit));
      return query.execute();
    });
    return rows.map(eventFromRow);
  }

  async lastEventId(): Promise<number> {
    const row = await this.#read((db) =>
      db
        .selectFrom('events')
        .select((eb) => eb.fn.max('id').as('last'))
        .executeTakeFirst(),
    );
    return row?.last ?? 0;
  }

  subscribe(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  // ---- progress and checkpoints ----

  async recordProgress(samples: readonly ProgressSample[]): Promise<void> {
    if (samples.length === 0) return;
    const rows = samples.map((sample, index) => {
      const parsed = ProgressSampleSchema.safeParse(sample);
      if (!parsed.success) throw invalid(parsed.error, `progress sample ${index}`);
      const s = parsed.data;
      return {
        job_id: s.jobId,
        attempt: s.attempt,
        rank: s.rank,
        step: s.step,
        loss: s.loss,
        tokens_per_s: s.tokensPerS,
        at: s.at,
      };
    });
    await this.#write(async (trx) => {
      for (const jobId of new Set(rows.map((r) => r.job_id))) await this.#jobOrThrow(trx, jobId);
      for (let i = 0; i < rows.length; i += progressBatchRows) {
        await trx
          .insertInto('progress')
          .values(rows.slice(i, i + progressBatchRows))
          .execute();
      }
    });
  }

  async listProgress(jobId: string, options: ProgressFilter = {}): Promise<ProgressSample[]> {
    if (options.limit === 0) return [];
    const rows = await this.#read((db) => {
      let query = db.selectFrom('progress').selectAll().where('job_id', '=', jobId).orderBy('id');
      if (options.rank !== undefined) query = query.where('rank', '=', options.rank);
      if (options.attempt !== undefined) query = query.where('attempt', '=', options.attempt);
      if (options.afterStep !== undefined) query = query.where('step', '>', options.afterStep);
      if (options.limit !== undefined) query = query.limit(checkedLimit(options.limit));
      return query.execute();
    });
    return rows.map(progressFromRow);
  }

  async recordCheckpoint(c: CheckpointRecord, events: readonly NewEvent[] = []): Promise<void> {
    const parsed = CheckpointRecordSchema.safeParse(c);
    if (!parsed.success) throw invalid(parsed.error, 'the checkpoint record');
    const record = parsed.data;
    await this.#write(async (trx, append) => {
      await this.#jobOrThrow(trx, record.jobId);
      const inserted = await trx
        .insertInto('checkpoints')
        .values({ job_id: record.jobId, step: record.step, level: record.level, at: record.at })
        .onConflict((oc) => oc.columns(['job_id', 'step', 'level']).doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0) await append(events);
    });
  }

  async listCheckpoints(jobId: string): Promise<CheckpointEntry[]> {
    const rows = await this.#read((db) =>
      db
        .selectFrom('checkpoints')
        .select(['step', 'level', 'at'])
        .where('job_id', '=', jobId)
        .orderBy('step')
        .orderBy('level')
        .execute(),
    );
    return rows.map((r) => ({
      step: r.step,
      level: r.level as CheckpointEntry['level'],
      at: r.at,
    }));
  }

  // ---- internals ----

  /**
   * Runs `work` in one write transaction; `append` adds events to the same transaction. The
   * events reach subscribers only once the transaction has committed.
   */
  async #write<T>(
    work: (trx: Trx, append: (events: readonly NewEvent[]) => Promise<Event[]>) => Promise<T>,
  ): Promise<T> {
    const appended: Event[] = [];
    let result: T;
    try {
      result = await this.#db.transaction().execute((trx) =>
        work(trx, async (events) => {
          const written = await this.#insertEvents(trx, events);
          appended.push(...written);
          return written;
        }),
      );
    } catch (cause) {
      throw this.#failure(cause);
    }
    if (appended.length > 0) {
      for (const listener of [...this.#listeners]) {
        try {
          listener(appended);
        } catch {
          // A listener's failure must not turn a committed write into a reported failure.
        }
      }
    }
    return result;
  }

  async #read<T>(work: (db: Kysely<StoreTables>) => Promise<T>): Promise<T> {
    try {
      return await work(this.#db);
    } catch (cause) {
      throw this.#failure(cause);
    }
  }

  #failure(cause: unknown): unknown {
    if (cause instanceof CubeError) return cause;
    if (cause instanceof Database.SqliteError) {
      return storageError(
        `the state database ${this.#path} failed: ${cause.message}`,
        this.#path,
        cause,
      );
    }
    return cause;
  }

  async #insertEvents(trx: Trx, events: readonly NewEvent[]): Promise<Event[]> {
    const known = new Set<string>();
    const written: Event[] = [];
    for (const [index, event] of events.entries()) {
      const { atMs, ...body } = event;
      const parsed = EventBodySchema.safeParse(body);
      if (!parsed.success) throw invalid(parsed.error, `event ${index} (${String(body.kind)})`);
      const valid = parsed.data;
      if (atMs !== undefined && !Number.isSafeInteger(atMs)) {
        throw new CubeError('INVALID_VALUE', `event ${index} has atMs ${atMs}, not epoch ms`, {
          where: { field: 'atMs' },
        });
      }
      if (valid.jobId !== undefined && !known.has(`j:${valid.jobId}`)) {
        await this.#jobOrThrow(trx, valid.jobId);
        known.add(`j:${valid.jobId}`);
      }
      if (valid.nodeId !== undefined && !known.has(`n:${valid.nodeId}`)) {
        await this.#nodeOrThrow(trx, valid.nodeId);
        known.add(`n:${valid.nodeId}`);
      }
      // A launch of a big gang appends thousands of events: one prepared statement, run inside
      // the transaction (the same connection), instead of a query built per event.
      this.#insertEvent ??= this.#sqlite.prepare(
        'INSERT INTO events (at, kind, job_id, node_id, rank, attempt, data_json) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *',
      );
      const row = this.#insertEvent.get(
        atMs ?? this.#now(),
        valid.kind,
        valid.jobId ?? null,
        valid.nodeId ?? null,
        valid.rank ?? null,
        valid.attempt ?? null,
        JSON.stringify(valid.data),
      ) as Selectable<EventsTable>;
      written.push(eventFromRow(row));
    }
    return written;
  }

  async #jobOrThrow(trx: Trx, id: string): Promise<Job> {
    const row = await trx.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
    if (row !== undefined) return jobFromRow(row);
    const known = await trx
      .selectFrom('jobs')
      .select('id')
      .orderBy('seq', 'desc')
      .limit(200)
      .execute();
    throw unknownIdError(
      'job',
      id,
      known.map((r) => r.id),
    );
  }

  async #nodeOrThrow(trx: Trx, id: string): Promise<Node> {
    const row = await trx.selectFrom('nodes').selectAll().where('id', '=', id).executeTakeFirst();
    if (row !== undefined) return nodeFromRow(row);
    const known = await trx
      .selectFrom('nodes')
      .select('id')
      .orderBy('seq', 'desc')
      .limit(200)
      .execute();
    throw unknownIdError(
      'node',
      id,
      known.map((r) => r.id),
    );
  }
}

/** A fresh id for `table`; collisions of 40 random bits are rare but cheap to rule out. */
async function freshId(trx: Trx, table: 'jobs' | 'nodes', make: () => string): Promise<string> {
  for (;;) {
    const id = make();
    const taken = await trx.selectFrom(table).select('id').where('id', '=', id).executeTakeFirst();
    if (taken === undefined) return id;
  }
}

function tokenInfoFromRow(row: {
  id: string;
  name: string;
  role: string;
  created_at: number;
  revoked_at: number | null;
}): ApiTokenInfo {
  return {
    id: row.id,
    name: row.name,
    role: row.role as ApiRole,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  };
}

function checkExpected<S extends string>(
  what: 'job' | 'node',
  id: string,
  actual: S,
  expected: S | readonly S[] | undefined,
): void {
  if (expected === undefined) return;
  const allowed: readonly S[] = typeof expected === 'string' ? [expected] : expected;
  if (allowed.includes(actual)) return;
  throw new CubeError(
    'INFEASIBLE',
    `${what} ${id} is ${actual}, not ${allowed.join(' or ')} as the change expected`,
    {
      where: what === 'node' ? { node: id, field: 'state' } : { field: 'state' },
      hint: 'read it again and retry',
    },
  );
}

function checkedLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new CubeError('INVALID_VALUE', `limit must be a whole number >= 0, got ${limit}`, {
      where: { field: 'limit' },
    });
  }
  return limit;
}

function invalid(error: z.ZodError, what: string): CubeError {
  return schemaError(error, { what, code: 'INVALID_VALUE' });
}

function storageError(message: string, path: string, cause: unknown): CubeError {
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  return new CubeError(
    'STORAGE_FAILED',
    message.includes(detail) ? message : `${message}${detail}`,
    {
      where: { file: path },
      cause,
    },
  );
}
