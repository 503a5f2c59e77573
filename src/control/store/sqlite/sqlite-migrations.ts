import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

// Migrations are code, named so they sort in the order they run. A released migration is
// never edited: a schema change is a new entry.
const migrations: Readonly<Record<string, Migration>> = {
  '0001-initial': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('api', 'join')`))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'integer', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('nodes')
        .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('labels_json', 'text', (c) => c.notNull())
        .addColumn('devices_json', 'text', (c) => c.notNull())
        .addColumn('host_memory_bytes', 'integer', (c) => c.notNull())
        .addColumn('host', 'text')
        .addColumn('ckpt_peer_port', 'integer')
        .addColumn('credential_hash', 'text', (c) => c.notNull())
        .addColumn('joined_at', 'integer', (c) => c.notNull())
        .addColumn('last_heartbeat_at', 'integer')
        .addColumn('health_json', 'text')
        .addColumn('updated_at', 'integer', (c) => c.notNull())
        .execute();
      // One live node per name: a rejoin finds it, a second agent under that name is refused.
      await db.schema
        .createIndex('nodes_live_name')
        .on('nodes')
        .column('name')
        .unique()
        .where(sql.ref('state'), '<>', 'left')
        .execute();

      await db.schema
        .createTable('jobs')
        .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('priority', 'integer', (c) => c.notNull())
        .addColumn('spec_json', 'text', (c) => c.notNull())
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('restarts', 'integer', (c) => c.notNull())
        .addColumn('placement_json', 'text')
        .addColumn('placement_explanation_json', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('created_at', 'integer', (c) => c.notNull())
        .addColumn('updated_at', 'integer', (c) => c.notNull())
        .addColumn('started_at', 'integer')
        .addColumn('ended_at', 'integer')
        .execute();
      await db.schema.createIndex('jobs_state').on('jobs').columns(['state', 'seq']).execute();

      // AUTOINCREMENT: ids are never reused, so an event id only ever grows.
      await db.schema
        .createTable('events')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('at', 'integer', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('job_id', 'text', (c) => c.references('jobs.id'))
        .addColumn('node_id', 'text', (c) => c.references('nodes.id'))
        .addColumn('rank', 'integer')
        .addColumn('attempt', 'integer')
        .addColumn('data_json', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('events_job').on('events').columns(['job_id', 'id']).execute();
      await db.schema.createIndex('events_node').on('events').columns(['node_id', 'id']).execute();

      await db.schema
        .createTable('progress')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.id'))
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('rank', 'integer', (c) => c.notNull())
        .addColumn('step', 'integer', (c) => c.notNull())
        .addColumn('loss', 'real')
        .addColumn('tokens_per_s', 'real')
        .addColumn('at', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('progress_job_rank')
        .on('progress')
        .columns(['job_id', 'rank', 'id'])
        .execute();

      await db.schema
        .createTable('checkpoints')
        .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.id'))
        .addColumn('step', 'integer', (c) => c.notNull())
        .addColumn('level', 'text', (c) => c.notNull().check(sql`level in ('L1', 'L2', 'L3')`))
        .addColumn('at', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('checkpoints_pk', ['job_id', 'step', 'level'])
        .execute();
    },
  },
  // Roles for API tokens (the tokens made before roles were all the operator's: admin), their
  // revocation, and the token that submitted each job (its owner, for `user` tokens' scope).
  '0002-token-roles': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .alterTable('tokens')
        .addColumn('role', 'text', (c) => c.notNull().defaultTo('admin'))
        .execute();
      await db.schema.alterTable('tokens').addColumn('revoked_at', 'integer').execute();
      await db.schema.alterTable('jobs').addColumn('owner', 'text').execute();
    },
  },
};

/** The store's migrations, for Kysely's Migrator. */
export const sqliteMigrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve(migrations),
};
