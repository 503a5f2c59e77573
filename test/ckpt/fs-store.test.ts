import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { CubeError } from '../../src/core/index.ts';
import { errnoOf, FsDurableStore, readText, xxh3Hex } from '../../src/ckpt/index.ts';
import { durableStoreContract } from './durable-store.contract.ts';
import { tempDir } from './helpers.ts';

const dir = tempDir('fs-store');
let count = 0;
durableStoreContract('FsDurableStore', () => new FsDurableStore(join(dir, `store-${count++}`)));

function mount(args: readonly string[]): boolean {
  return spawnSync('mount', args, { stdio: 'ignore' }).status === 0;
}
function umount(path: string): void {
  spawnSync('umount', [path], { stdio: 'ignore' });
}

function bytesStream(total: number): AsyncIterable<Uint8Array> {
  return Readable.from(
    Array.from({ length: Math.ceil(total / (64 * 1024)) }, () => Buffer.alloc(64 * 1024, 7)),
  );
}

/** Asserts a storage CubeError with this errno that names `path`. */
function storageFailure(errno: string, path: string): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof CubeError, String(e));
    assert.equal(errnoOf(e), errno, e.message);
    assert.ok(e.message.includes(path), e.message);
    assert.ok(e.message.includes(errno), e.message);
    assert.equal(e.where.file, path);
    assert.equal(e.isBadInput, false, 'a storage failure is a run-time failure (exit 1)');
    return true;
  };
}

describe('FsDurableStore failures', () => {
  test('a file standing where a directory is expected fails the put, naming the path', async () => {
    const root = join(dir, 'notdir');
    const store = new FsDurableStore(root);
    await store.put('job/keep.json', { kind: 'bytes', bytes: 'earlier' });
    writeFileSync(join(root, 'blocker'), 'a file');
    const target = join(root, 'blocker', 'x.json');
    await assert.rejects(
      store.put('blocker/x.json', { kind: 'bytes', bytes: 'new' }),
      storageFailure('ENOTDIR', target),
    );
    assert.equal(await readText(store, 'job/keep.json'), 'earlier');
  });

  test('a full filesystem (ENOSPC) fails the put with the path, and earlier files stay intact', async (t) => {
    const mnt = join(dir, 'tiny');
    mkdirSync(mnt);
    if (!mount(['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt])) {
      t.skip('cannot mount a tmpfs here (needs root)');
      return;
    }
    t.after(() => umount(mnt));
    const store = new FsDurableStore(mnt);
    const earlier = Buffer.alloc(200 * 1024, 1);
    await store.put('job/step-0000000001/rank-00000.safetensors', {
      kind: 'bytes',
      bytes: earlier,
    });

    // Size unknown in advance (a stream): the write itself hits ENOSPC.
    const path = join(mnt, 'job', 'step-0000000002', 'rank-00000.safetensors');
    await assert.rejects(
      store.put('job/step-0000000002/rank-00000.safetensors', {
        kind: 'stream',
        stream: bytesStream(4 * 1024 * 1024),
      }),
      storageFailure('ENOSPC', path),
    );
    // Overwriting the earlier object with too much leaves the earlier one whole.
    const earlierPath = join(mnt, 'job', 'step-0000000001', 'rank-00000.safetensors');
    await assert.rejects(
      store.put('job/step-0000000001/rank-00000.safetensors', {
        kind: 'stream',
        stream: bytesStream(4 * 1024 * 1024),
      }),
      storageFailure('ENOSPC', earlierPath),
    );
    // Size known in advance: refused before writing anything.
    await assert.rejects(
      store.put('job/big', { kind: 'bytes', bytes: Buffer.alloc(2 * 1024 * 1024) }),
      storageFailure('ENOSPC', join(mnt, 'job', 'big')),
    );
    const chunks: Uint8Array[] = [];
    for await (const c of await store.get('job/step-0000000001/rank-00000.safetensors'))
      chunks.push(c);
    assert.equal(xxh3Hex(Buffer.concat(chunks)), xxh3Hex(earlier));
    assert.deepEqual(
      readdirSync(join(mnt, 'job', 'step-0000000002')),
      [],
      'no temp file is left behind',
    );
  });

  test('a read-only filesystem (EROFS) fails the put with the path, earlier files intact', async (t) => {
    const src = join(dir, 'ro-src');
    const mnt = join(dir, 'ro');
    mkdirSync(src);
    mkdirSync(mnt);
    const before = new FsDurableStore(src);
    await before.put('job/a', { kind: 'bytes', bytes: 'earlier' });
    if (!mount(['--bind', src, mnt])) {
      t.skip('cannot bind-mount here (needs root)');
      return;
    }
    t.after(() => umount(mnt));
    if (!mount(['-o', 'remount,ro,bind', mnt])) {
      t.skip('cannot remount read-only here');
      return;
    }
    const store = new FsDurableStore(mnt);
    await assert.rejects(
      store.put('job/a', { kind: 'bytes', bytes: 'new' }),
      storageFailure('EROFS', join(mnt, 'job', 'a')),
    );
    assert.equal(await readText(store, 'job/a'), 'earlier');
  });

  test('a directory without write permission (EACCES) fails the put with the path', async (t) => {
    if (process.getuid?.() === 0) {
      t.skip('root ignores permissions; ENOTDIR, ENOSPC and EROFS cover the failure path');
      return;
    }
    const root = join(dir, 'locked');
    const store = new FsDurableStore(root);
    await store.put('job/a', { kind: 'bytes', bytes: 'earlier' });
    chmodSync(join(root, 'job'), 0o500);
    t.after(() => chmodSync(join(root, 'job'), 0o700));
    await assert.rejects(
      store.put('job/a', { kind: 'bytes', bytes: 'new' }),
      storageFailure('EACCES', join(root, 'job', 'a')),
    );
    assert.equal(await readText(store, 'job/a'), 'earlier');
  });
});

describe('FsDurableStore streaming', () => {
  test('a stream whose producer refills one buffer is stored exactly as produced', async () => {
    // Like a transient read: the producer reuses its buffer once asked for the next chunk,
    // while the store may still be writing the previous one.
    const store = new FsDurableStore(join(dir, 'reused-buffer'));
    const piece = 3 * 1024 * 1024 + 17; // not a multiple of the store's write size
    const pieces = 9;
    const expected = Buffer.alloc(piece * pieces);
    for (let i = 0; i < pieces; i += 1) expected.fill(i + 1, i * piece, (i + 1) * piece);
    async function* reused(): AsyncGenerator<Uint8Array> {
      const buffer = Buffer.alloc(piece);
      for (let i = 0; i < pieces; i += 1) {
        buffer.fill(i + 1);
        yield await Promise.resolve(buffer);
      }
    }
    const written = await store.put('job/x.bin', { kind: 'stream', stream: reused() });
    assert.equal(written.bytes, expected.length);
    assert.equal(written.xxh3, xxh3Hex(expected));
    const back: Buffer[] = [];
    for await (const chunk of await store.get('job/x.bin')) back.push(Buffer.from(chunk));
    assert.ok(Buffer.concat(back).equals(expected), 'the stored bytes are the produced bytes');
  });
});

describe('FsDurableStore streaming without copies', () => {
  const eightMiB = 8 * 1024 * 1024;

  test('large chunks from a producer refilling two buffers in turn are stored exactly', async () => {
    // A transient read's pattern: each chunk is valid until the one after next is asked for.
    // Such chunks are written as they come (no copy), one write in flight.
    const store = new FsDurableStore(join(dir, 'two-buffers'));
    const sizes = [eightMiB, eightMiB, eightMiB, 5 * 1024 * 1024 + 3];
    const expected = Buffer.concat(sizes.map((n, i) => Buffer.alloc(n, i + 1)));
    async function* twoBuffers(): AsyncGenerator<Uint8Array> {
      const buffers = [Buffer.alloc(eightMiB), Buffer.alloc(eightMiB)];
      for (const [i, n] of sizes.entries()) {
        const buffer = buffers[i % 2] as Buffer;
        buffer.fill(i + 1, 0, n);
        yield await Promise.resolve(buffer.subarray(0, n));
      }
    }
    const written = await store.put('job/big.bin', { kind: 'stream', stream: twoBuffers() });
    assert.deepEqual(written, { bytes: expected.length, xxh3: xxh3Hex(expected) });
    const back: Buffer[] = [];
    for await (const chunk of await store.get('job/big.bin')) back.push(Buffer.from(chunk));
    assert.ok(Buffer.concat(back).equals(expected), 'the stored bytes are the produced bytes');
  });

  test('runs of small pieces are gathered into vectored writes and stored exactly', async () => {
    // A socket's pieces: fresh buffers of any size (empty ones too), in runs of any length,
    // more than one vectored write can take at once.
    const store = new FsDurableStore(join(dir, 'gathered'));
    const pieces = Array.from({ length: 1500 }, (_, i) =>
      Buffer.alloc(i % 97 === 0 ? 0 : 1 + ((i * 7919) % 65_536), i % 251),
    );
    const expected = Buffer.concat(pieces);
    async function* runs(): AsyncGenerator<Uint8Array[]> {
      for (let at = 0, n = 1; at < pieces.length; at += n, n = (n % 300) + 7)
        yield await Promise.resolve(pieces.slice(at, at + n).map((p) => Buffer.from(p)));
    }
    const written = await store.put('job/gathered.bin', { kind: 'pieces', runs: runs() });
    assert.deepEqual(written, { bytes: expected.length, xxh3: xxh3Hex(expected) });
    const back: Buffer[] = [];
    for await (const chunk of await store.get('job/gathered.bin')) back.push(Buffer.from(chunk));
    assert.ok(Buffer.concat(back).equals(expected), 'the stored bytes are the produced bytes');
  });

  test('a put stopped half way closes its producer and leaves nothing behind', async () => {
    const store = new FsDurableStore(join(dir, 'stopped'));
    const abort = new AbortController();
    let closed = false;
    async function* producer(): AsyncGenerator<Uint8Array> {
      try {
        for (let i = 0; i < 8; i += 1) {
          if (i === 2) abort.abort(new Error('stopped by the test'));
          yield await Promise.resolve(Buffer.alloc(eightMiB, i));
        }
      } finally {
        closed = true;
      }
    }
    await assert.rejects(
      store.put(
        'job/stopped.bin',
        { kind: 'stream', stream: producer() },
        { signal: abort.signal },
      ),
    );
    assert.ok(closed, 'the producer was closed');
    assert.equal(await store.head('job/stopped.bin'), null);
    assert.deepEqual(readdirSync(join(dir, 'stopped', 'job')), [], 'no temp file is left');
  });
});

describe("FsDurableStore reads into the caller's buffers", () => {
  test('a transient read refills the two buffers it is given and yields the file exactly', async () => {
    const store = new FsDurableStore(join(dir, 'caller-buffers'));
    const content = Buffer.alloc(5 * 1024 * 1024 + 123);
    for (let i = 0; i < content.length; i += 1000) content[i] = (i / 1000) % 251;
    await store.put('job/x.bin', { kind: 'bytes', bytes: content });
    const buffers = [Buffer.alloc(1024 * 1024), Buffer.alloc(1024 * 1024)] as const;
    for (let round = 0; round < 2; round += 1) {
      const back: Buffer[] = [];
      const owners = new Set<ArrayBufferLike>();
      for await (const chunk of await store.get('job/x.bin', { transient: true, buffers })) {
        owners.add(chunk.buffer);
        back.push(Buffer.from(chunk));
      }
      assert.ok(Buffer.concat(back).equals(content), `round ${round}: the bytes of the file`);
      assert.deepEqual(
        owners,
        new Set([buffers[0].buffer, buffers[1].buffer]),
        'every chunk lies in one of the two given buffers',
      );
    }
  });
});
