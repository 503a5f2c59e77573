import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import { xxh3Hex } from '../../../src/ckpt/index.ts';
import { FrameReader, sendFrame } from '../../../src/ckpt/daemon/frames.ts';

/** A loopback connection: the server end read by a FrameReader, the client end to send on. */
async function connection(): Promise<{ reader: FrameReader; sender: Socket; server: Server }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const sender = connect({ host: '127.0.0.1', port });
  const [socket] = await accepted;
  return { reader: new FrameReader(socket), sender, server };
}

function patterned(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 4096) b[i] = (i / 4096 + seed) % 256;
  return b;
}

async function* chunksOf(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += size)
    yield await Promise.resolve(data.subarray(at, at + size));
}

describe('FrameReader', () => {
  const servers: Server[] = [];
  after(() => servers.forEach((s) => s.close()));

  test('a consumer far behind the sender gets every byte, then the next frame', async () => {
    // More than the reader queues before it pauses the socket, read slowly.
    const { reader, sender, server } = await connection();
    servers.push(server);
    const data = patterned(40 * 1024 * 1024 + 12_345, 3);
    const sending = (async () => {
      await sendFrame(sender, { op: 'put', bytes: data.length }, chunksOf(data, 8 << 20));
      await sendFrame(sender, { op: 'after' });
    })();
    const first = await reader.next();
    assert.equal(first?.header.op, 'put');
    const got: Buffer[] = [];
    let sinceNap = 0;
    for await (const piece of first?.payload ?? []) {
      got.push(Buffer.from(piece));
      sinceNap += piece.length;
      if (sinceNap > 2 * 1024 * 1024) {
        sinceNap = 0;
        await sleep(5);
      }
    }
    assert.equal(xxh3Hex(Buffer.concat(got)), xxh3Hex(data));
    assert.equal((await reader.next())?.header.op, 'after');
    await sending;
    sender.destroy();
  });

  test('a payload read in runs gives every byte once, in order', async () => {
    const { reader, sender, server } = await connection();
    servers.push(server);
    const data = patterned(20 * 1024 * 1024 + 7, 5);
    const sending = (async () => {
      await sendFrame(sender, { op: 'put', bytes: data.length }, chunksOf(data, 3 << 20));
      await sendFrame(sender, { op: 'after' });
    })();
    const frame = await reader.next();
    const got: Buffer[] = [];
    let runs = 0;
    for await (const run of frame?.runs ?? []) {
      runs += 1;
      assert.ok(run.length >= 1, 'a run holds at least one piece');
      for (const piece of run) got.push(Buffer.from(piece));
      if (runs % 3 === 0) await sleep(2);
    }
    assert.equal(xxh3Hex(Buffer.concat(got)), xxh3Hex(data));
    assert.ok(runs < got.length, `runs (${runs}) gather several pieces (${got.length})`);
    assert.equal((await reader.next())?.header.op, 'after');
    await sending;
    sender.destroy();
  });

  test('a payload left half read is skipped and the connection stays in step', async () => {
    const { reader, sender, server } = await connection();
    servers.push(server);
    const data = patterned(3 * 1024 * 1024, 1);
    await sendFrame(sender, { op: 'one', bytes: data.length }, chunksOf(data, 1 << 20));
    await sendFrame(sender, { op: 'two' });
    const one = await reader.next();
    for await (const piece of one?.payload ?? []) if (piece.length > 0) break;
    assert.equal((await reader.next())?.header.op, 'two');
    sender.destroy();
  });

  test('a connection closed mid-payload fails the read instead of ending it short', async () => {
    const { reader, sender, server } = await connection();
    servers.push(server);
    const header = Buffer.from(JSON.stringify({ op: 'put', bytes: 1000 }));
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(header.length);
    sender.end(Buffer.concat([prefix, header, Buffer.alloc(10)]));
    const frame = await reader.next();
    await assert.rejects(
      (async () => {
        for await (const piece of frame?.payload ?? []) void piece;
      })(),
      /connection closed mid-payload/,
    );
  });
});
