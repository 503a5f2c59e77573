/**
 * The behaviour every DurableStore must have. Each implementation's test file calls
 * `durableStoreContract` with a factory; today only FsDurableStore exists.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { CubeError } from '../../src/core/index.ts';
import { contentMismatchOf, readText, xxh3Hex, type DurableStore } from '../../src/ckpt/index.ts';

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks);
}

function streamOf(...parts: string[]): AsyncIterable<Uint8Array> {
  return Readable.from(parts.map((p) => Buffer.from(p)));
}

export function durableStoreContract(name: string, makeStore: () => DurableStore): void {
  describe(`DurableStore contract: ${name}`, () => {
    test('a put returns the size and XXH3-64 of what it stored, and get streams it back', async () => {
      const store = makeStore();
      const written = await store.put('job/a.bin', { kind: 'bytes', bytes: 'hello world' });
      assert.deepEqual(written, { bytes: 11, xxh3: xxh3Hex('hello world') });
      assert.equal((await collect(await store.get('job/a.bin'))).toString(), 'hello world');
    });

    test('put accepts a stream and a file path as well as bytes', async () => {
      const store = makeStore();
      await store.put('s/x', { kind: 'stream', stream: streamOf('ab', 'cd') });
      assert.equal(await readText(store, 's/x'), 'abcd');
    });

    test('a ranged get returns only those bytes', async () => {
      const store = makeStore();
      await store.put('r/x', { kind: 'bytes', bytes: '0123456789' });
      const part = await collect(await store.get('r/x', { range: { start: 2, end: 5 } }));
      assert.equal(part.toString(), '234');
    });

    test('head reports size, and null for a missing key', async () => {
      const store = makeStore();
      await store.put('h/x', { kind: 'bytes', bytes: 'abc' });
      assert.equal((await store.head('h/x'))?.bytes, 3);
      assert.equal(await store.head('h/missing'), null);
    });

    test('get of a missing key throws FILE_NOT_FOUND naming its location', async () => {
      const store = makeStore();
      await assert.rejects(store.get('nope/x'), (e: unknown) => {
        assert.ok(e instanceof CubeError);
        assert.equal(e.code, 'FILE_NOT_FOUND');
        assert.ok(e.message.includes(store.locate('nope/x')));
        return true;
      });
    });

    test('list shows one level: objects and sub-prefixes, sorted', async () => {
      const store = makeStore();
      await store.put('l/b', { kind: 'bytes', bytes: '1' });
      await store.put('l/a', { kind: 'bytes', bytes: '22' });
      await store.put('l/sub/c', { kind: 'bytes', bytes: '3' });
      const listed = await store.list('l/');
      assert.deepEqual(
        listed.objects.map((o) => [o.key, o.bytes]),
        [
          ['l/a', 2],
          ['l/b', 1],
        ],
      );
      assert.deepEqual(listed.prefixes, ['l/sub/']);
      assert.deepEqual(await store.list('none/'), { objects: [], prefixes: [] });
    });

    test('a put with expected content that differs stores nothing and keeps the old object', async () => {
      const store = makeStore();
      await store.put('e/x', { kind: 'bytes', bytes: 'old' });
      const error = await store
        .put('e/x', { kind: 'bytes', bytes: 'new!' }, { expected: { xxh3: xxh3Hex('other') } })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.ok(error instanceof CubeError);
      assert.equal(contentMismatchOf(error)?.kind, 'checksum-mismatch');
      assert.equal(await readText(store, 'e/x'), 'old');
      assert.deepEqual(
        (await store.list('e/')).objects.map((o) => o.key),
        ['e/x'],
      );
    });

    test('an aborted put stores nothing', async () => {
      const store = makeStore();
      const controller = new AbortController();
      function* abortMidway(): Generator<Uint8Array> {
        yield Buffer.from('a');
        controller.abort();
        yield Buffer.from('b');
      }
      await assert.rejects(
        store.put(
          'ab/x',
          { kind: 'stream', stream: Readable.from(abortMidway()) },
          { signal: controller.signal },
        ),
      );
      assert.equal(await store.head('ab/x'), null);
      assert.deepEqual((await store.list('ab/')).objects, []);
    });

    test('delete removes an object and is quiet about a missing one', async () => {
      const store = makeStore();
      await store.put('d/x', { kind: 'bytes', bytes: '1' });
      await store.delete('d/x');
      await store.delete('d/x');
      assert.equal(await store.head('d/x'), null);
    });

    test('deletePrefix removes everything under a prefix and nothing else', async () => {
      const store = makeStore();
      await store.put('p/1/a', { kind: 'bytes', bytes: '1' });
      await store.put('p/1/b/c', { kind: 'bytes', bytes: '1' });
      await store.put('p/2/a', { kind: 'bytes', bytes: '1' });
      await store.deletePrefix('p/1/');
      assert.deepEqual((await store.list('p/')).prefixes, ['p/2/']);
    });

    test('keys that could escape the store or name hidden files are refused', async () => {
      const store = makeStore();
      for (const key of ['../x', 'a/../../x', '/abs', 'a//b', '.hidden', 'a/.tmp'])
        await assert.rejects(store.put(key, { kind: 'bytes', bytes: '' }), /not a store key/);
    });

    test('free space is a number of bytes or null', async () => {
      const free = await makeStore().freeBytes();
      assert.ok(free === null || (Number.isFinite(free) && free >= 0));
    });
  });
}
