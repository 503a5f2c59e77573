// Issue 13, finding 4: server-side rank logs are capped and rotated, and reads are ranged (a
// big log is never read whole into memory).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ControlPlane } from '../../src/control/control-plane.ts';
import {
  maxLogReadBytes,
  RankLogs,
  rankLogPath,
  wholeUtf8Length,
} from '../../src/control/server/rank-logs.ts';

let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'cube-rank-logs-'));
});

after(() => rmSync(dir, { recursive: true, force: true }));

function bytesOnDisk(path: string): number {
  return readdirSync(dirname(path))
    .filter((f) => f.startsWith('rank-0.log') && !f.endsWith('.base'))
    .reduce((sum, f) => sum + statSync(join(dirname(path), f)).size, 0);
}

test('a rank log keeps at most its cap on disk and offsets stay those of everything written', async () => {
  const logs = new RankLogs({ maxBytes: 1000 });
  const path = join(dir, 'a', 'rank-0.log');
  let all = '';
  for (let i = 0; i < 40; i += 1) {
    const line = `line ${String(i).padStart(3, '0')} ${'x'.repeat(89)}\n`;
    all += line;
    await logs.append(path, line);
    assert.ok(bytesOnDisk(path) <= 1000, `after line ${i}: ${bytesOnDisk(path)} bytes`);
  }
  const first = await logs.read(path, { offset: 0, limit: 10_000 });
  assert.equal(first.size, all.length);
  assert.ok(first.start > 0, 'old lines were rotated out');
  assert.equal(first.offset, first.start);
  assert.equal(first.bytes.toString(), all.slice(first.start));
  // Small ranged reads put the same text back together.
  let offset = first.start;
  let text = '';
  for (;;) {
    const r = await logs.read(path, { offset, limit: 37 });
    if (r.bytes.length === 0) break;
    assert.ok(r.bytes.length <= 37);
    text += r.bytes.toString();
    offset = r.nextOffset;
  }
  assert.equal(text, all.slice(first.start));
});

test('one append larger than a file keeps its tail, and concurrent appends stay in order', async () => {
  const logs = new RankLogs({ maxBytes: 100 });
  const path = join(dir, 'b', 'rank-0.log');
  await logs.append(path, `${'a'.repeat(200)}END`);
  const r = await logs.read(path, { offset: 0, limit: 1000 });
  assert.equal(r.size, 203);
  assert.equal(r.bytes.toString(), `${'a'.repeat(47)}END`);
  const ordered = new RankLogs();
  const p2 = join(dir, 'c', 'rank-0.log');
  await Promise.all(Array.from({ length: 50 }, (_, i) => ordered.append(p2, `${i}\n`)));
  const lines = (await ordered.read(p2, { offset: 0, limit: 10_000 })).bytes.toString();
  assert.deepEqual(
    lines.trim().split('\n').map(Number),
    Array.from({ length: 50 }, (_, i) => i),
  );
});

test('a range never ends inside a UTF-8 character', () => {
  const text = Buffer.from('aé€😀', 'utf8');
  for (let n = 0; n <= text.length; n += 1) {
    const cut = wholeUtf8Length(text.subarray(0, n));
    assert.ok(cut <= n);
    assert.ok(!text.subarray(0, cut).toString('utf8').includes('\uFFFD'), `cut ${n} -> ${cut}`);
  }
  assert.equal(wholeUtf8Length(text), text.length);
});

test('four concurrent reads of a big log each get at most the limit, with its size in the headers', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cube-rank-logs-server-'));
  const cp = await ControlPlane.start({ dataDir, tickMs: 60_000 });
  try {
    const job = await cp.store.createJob({
      name: 'big-log',
      command: ['true'],
      ranks: { nodes: 1, devicesPerNode: 1 },
      deviceType: 'cpu',
    } as never);
    const path = rankLogPath(dataDir, job.id, 0, 0);
    mkdirSync(dirname(path), { recursive: true });
    const size = 24 * 1024 * 1024;
    writeFileSync(path, Buffer.alloc(size, 'z'));
    const get = async (
      query: string,
    ): Promise<{ status: number; bytes: number; headers: Headers }> => {
      const response = await fetch(`${cp.url}/api/v1/jobs/${job.id}/logs?rank=0${query}`, {
        headers: { authorization: `Bearer ${cp.tokens.apiToken}` },
      });
      return {
        status: response.status,
        bytes: (await response.arrayBuffer()).byteLength,
        headers: response.headers,
      };
    };
    const replies = await Promise.all([0, 1, 2, 3].map((i) => get(`&offset=${i * 5_000_000}`)));
    for (const [i, r] of replies.entries()) {
      assert.equal(r.status, 200);
      assert.equal(r.bytes, maxLogReadBytes);
      assert.equal(r.headers.get('x-cube-log-size'), String(size));
      assert.equal(
        r.headers.get('x-cube-log-next-offset'),
        String(i * 5_000_000 + maxLogReadBytes),
      );
    }
    const small = await get('&offset=100&limit=10');
    assert.equal(small.bytes, 10);
    assert.equal((await get(`&limit=${maxLogReadBytes + 1}`)).status, 400);
    const end = await get(`&offset=${size}`);
    assert.equal(end.bytes, 0);
  } finally {
    await cp.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
