import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { CubeError } from '../../../src/core/index.ts';
import { openSqliteStore } from '../../../src/control/store/index.ts';
import { sampleJoin, sampleSpec, stateStoreContract } from './state-store.contract.ts';

const repoRoot = new URL('../../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'cube-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let count = 0;

/** Every row of `table` in the database file, through a second, read-only connection. */
function rowsOf(path: string, table: string): Record<string, unknown>[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(`select * from ${table}`).all() as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

stateStoreContract('SQLite file', async (options = {}) => {
  const path = join(dir, `contract-${count++}`, 'state.db');
  const store = await openSqliteStore({ path, ...options });
  return {
    store,
    reopen: () => openSqliteStore({ path, ...options }),
    rawRows: (table) => Promise.resolve(rowsOf(path, table)),
  };
});

stateStoreContract('SQLite :memory:', async (options = {}) => ({
  store: await openSqliteStore({ path: ':memory:', ...options }),
}));

describe('SqliteStateStore', () => {
  test('a file store runs in WAL mode with synchronous FULL and foreign keys on', async () => {
    const path = join(dir, 'settings.db');
    const store = await openSqliteStore({ path });
    try {
      assert.deepEqual(store.settings(), { journalMode: 'wal', synchronous: 2, foreignKeys: true });
      // Heartbeat batches commit without an fsync; everything after them is FULL again.
      const { node } = await store.joinNode({
        name: 'n0',
        labels: {},
        devices: [],
        hostMemoryBytes: 1,
      });
      await store.recordHeartbeats([{ nodeId: node.id, at: 5, health: null }]);
      assert.equal(store.settings().synchronous, 2);
      await assert.rejects(store.recordHeartbeats([{ nodeId: 'n-nothere1', at: 5 }]));
      assert.equal(store.settings().synchronous, 2);
    } finally {
      await store.close();
    }
  });

  test('a write survives the writer being SIGKILLed right after the method resolves', async () => {
    const path = join(dir, 'crash', 'state.db');
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'test/control/store/crash-writer.ts'), path],
      { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 },
    );
    assert.equal(child.signal, 'SIGKILL', `the writer died by SIGKILL: ${child.stderr}`);
    // The killed process never closed the database, so its last commits sit in the WAL.
    assert.ok(existsSync(`${path}-wal`), 'the WAL was left behind');
    const wrote = JSON.parse(child.stdout.trim()) as {
      token: string;
      nodeId: string;
      credential: string;
      jobId: string;
    };

    const store = await openSqliteStore({ path });
    try {
      const job = await store.getJob(wrote.jobId);
      assert.equal(job?.state, 'running', 'the last write, acknowledged just before the kill');
      assert.equal(job?.attempt, 1);
      const events = await store.listEvents({ jobId: wrote.jobId });
      assert.deepEqual(
        events.map((e) => e.kind),
        ['job-submitted', 'job-running'],
      );
      assert.equal(await store.verifyApiToken(wrote.token), true);
      assert.equal(
        (await store.authenticateNode(wrote.nodeId, wrote.credential))?.name,
        'crash-node',
      );
    } finally {
      await store.close();
    }
  });

  test('tokens and credentials appear nowhere in the database or WAL bytes', async () => {
    const path = join(dir, 'bytes.db');
    const store = await openSqliteStore({ path });
    let secrets: string[];
    try {
      const api = await store.createApiToken('user');
      const joinToken = await store.createJoinToken('agents');
      const { credential } = await store.joinNode(sampleJoin('node-a'));
      secrets = [api.token, joinToken.token, credential];
      // Checked while the store is open, so the WAL still holds the commits.
      const bytes = Buffer.concat([readFileSync(path), readFileSync(`${path}-wal`)]);
      for (const secret of secrets) assert.equal(bytes.includes(secret), false);
    } finally {
      await store.close();
    }
    const closed = readFileSync(path);
    for (const secret of secrets) assert.equal(closed.includes(secret), false);
  });

  test('opening creates a missing directory, and migrations run once', async () => {
    const path = join(dir, 'deep', 'er', 'state.db');
    for (let i = 0; i < 2; i++) {
      const store = await openSqliteStore({ path });
      await store.createJob(sampleSpec(`job-${i}`));
      await store.close();
    }
    assert.deepEqual(
      rowsOf(path, 'kysely_migration').map((r) => r.name),
      ['0001-initial', '0002-token-roles'],
    );
    assert.equal(rowsOf(path, 'jobs').length, 2);
  });

  test('a database from before roles keeps its API tokens, as admin tokens, and its jobs', async () => {
    const path = join(dir, 'before-roles.db');
    const store = await openSqliteStore({ path });
    const { token } = await store.createApiToken('admin');
    const job = await store.createJob(sampleSpec('old-job'));
    await store.close();
    // Back to the schema of 0001, as a database written before roles has it.
    const db = new Database(path);
    db.exec(`ALTER TABLE tokens DROP COLUMN role;
      ALTER TABLE tokens DROP COLUMN revoked_at;
      ALTER TABLE jobs DROP COLUMN owner;
      DELETE FROM kysely_migration WHERE name = '0002-token-roles';`);
    db.close();
    const reopened = await openSqliteStore({ path });
    try {
      assert.equal((await reopened.authenticateApiToken(token))?.role, 'admin');
      const old = await reopened.getJob(job.id);
      assert.equal(old?.owner, undefined);
      const created = await reopened.createApiToken('u', { role: 'user' });
      const owned = await reopened.createJob(sampleSpec('new-job'), { owner: created.id });
      assert.equal((await reopened.getJob(owned.id))?.owner, created.id);
      await reopened.revokeApiToken(created.id);
      assert.equal(await reopened.authenticateApiToken(created.token), null);
      assert.equal(await reopened.verifyApiToken(created.token), false);
    } finally {
      await reopened.close();
    }
  });

  test('a path that cannot hold a database fails with STORAGE_FAILED naming it', async () => {
    const path = join(dir, 'a-directory');
    mkdirSync(path);
    await assert.rejects(openSqliteStore({ path }), (e: unknown) => {
      assert.ok(e instanceof CubeError);
      assert.equal(e.code, 'STORAGE_FAILED');
      assert.equal(e.where.file, path);
      assert.ok(e.message.includes(path), e.message);
      return true;
    });
  });
});
