// Issue 13, finding 6: the data directory is private (0700, this user's, not writable by
// others), the database and the token file are 0600, and the token file is written atomically;
// a torn token file is an error naming it, not a crash.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane, adminTokensPath } from '../../src/control/control-plane.ts';
import { CubeError } from '../../src/core/index.ts';

let root: string;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'cube-data-dir-'));
});

after(() => rmSync(root, { recursive: true, force: true }));

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

test('a new data directory is 0700 and the database and token file are 0600', async () => {
  const dataDir = join(root, 'fresh', 'server');
  const cp = await ControlPlane.start({ dataDir });
  try {
    assert.equal(mode(dataDir), 0o700);
    for (const f of ['cube.db', 'cube.db-wal', 'cube.db-shm', 'admin-tokens.json'])
      if (existsSync(join(dataDir, f))) assert.equal(mode(join(dataDir, f)), 0o600, f);
    assert.ok(existsSync(join(dataDir, 'cube.db')));
    // No temp file is left behind by the atomic write.
    assert.deepEqual(
      readdirSync(dataDir).filter((f) => f.endsWith('.tmp')),
      [],
    );
  } finally {
    await cp.stop();
  }
});

test('an old 0644 token file and a 0755 directory are tightened, and the same tokens are kept', async () => {
  const dataDir = join(root, 'old');
  const first = await ControlPlane.start({ dataDir });
  const tokens = first.tokens;
  await first.stop();
  chmodSync(dataDir, 0o755);
  chmodSync(adminTokensPath(dataDir), 0o644);
  chmodSync(join(dataDir, 'cube.db'), 0o644);
  const second = await ControlPlane.start({ dataDir });
  try {
    assert.deepEqual(second.tokens, tokens);
    assert.equal(mode(dataDir), 0o700);
    assert.equal(mode(adminTokensPath(dataDir)), 0o600);
    assert.equal(mode(join(dataDir, 'cube.db')), 0o600);
  } finally {
    await second.stop();
  }
});

test('a torn token file stops the start with an error naming the file', async () => {
  const dataDir = join(root, 'torn');
  const first = await ControlPlane.start({ dataDir });
  await first.stop();
  const path = adminTokensPath(dataDir);
  writeFileSync(path, readFileSync(path, 'utf8').slice(0, 20));
  await assert.rejects(ControlPlane.start({ dataDir }), (error: unknown) => {
    assert.ok(error instanceof CubeError);
    assert.equal(error.code, 'CORRUPT_DATA');
    assert.ok(error.message.includes(path), error.message);
    return true;
  });
  // Moved aside, as the hint says: the next start writes new tokens.
  rmSync(path);
  const again = await ControlPlane.start({ dataDir });
  await again.stop();
});

test('a data directory writable by others is refused before anything is written in it', async () => {
  const dataDir = join(root, 'shared');
  mkdirSync(dataDir);
  chmodSync(dataDir, 0o777);
  await assert.rejects(ControlPlane.start({ dataDir }), /writable by everyone/);
  chmodSync(dataDir, 0o775);
  await assert.rejects(ControlPlane.start({ dataDir }), /writable by its group/);
  assert.deepEqual(readdirSync(dataDir), []);
});

test(
  'a data directory owned by another user is refused',
  { skip: process.getuid?.() !== 0 && 'needs root to chown' },
  async () => {
    const dataDir = join(root, 'theirs');
    mkdirSync(dataDir, { mode: 0o700 });
    chownSync(dataDir, 65534, 65534);
    await assert.rejects(ControlPlane.start({ dataDir }), /owned by uid 65534/);
    assert.deepEqual(readdirSync(dataDir), []);
  },
);
