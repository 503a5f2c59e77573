import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import { shardRecordSchema, xxh3Hex, type ShardRecord } from '../../../src/ckpt/index.ts';
import { PeerClient } from '../../../src/ckpt/daemon/index.ts';
import { fetchPayload, PayloadListener } from '../../../src/ckpt/daemon/dial-back.ts';
import { FrameReader, sendFrame, sendPayload } from '../../../src/ckpt/daemon/frames.ts';
import { allocateStagingBuffers } from '../../../src/ckpt/daemon/staged-receive.ts';
import {
  helloMac,
  macEquals,
  newMasterKey,
  newNonce,
  pairKey,
  welcomeMac,
} from '../../../src/ckpt/daemon/peer-auth.ts';

/** The key node-a proves itself with toward node-b in job-a's attempt 0. */
const key = pairKey(newMasterKey(), { job: 'job-a', attempt: 0, from: 'node-a', to: 'node-b' });

function clientOf(port: number): PeerClient {
  return new PeerClient(
    { node: 'node-b', host: '127.0.0.1', port },
    { self: 'node-a', credential: () => ({ attempt: 0, key }) },
  );
}

async function* chunksOf(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += size)
    yield await Promise.resolve(data.subarray(at, at + size));
}

/** Offers `data` on a fresh listener and sends it once the receiver dials in. */
async function offer(
  data: Buffer,
  send: (socket: Socket) => Promise<void> = async (socket) => {
    await sendPayload(socket, data.length, chunksOf(data, 256 * 1024));
    socket.end();
  },
): Promise<{ port: number; ticket: string; sent: Promise<void>; close: () => Promise<void> }> {
  const listener = await PayloadListener.listen('127.0.0.1');
  const { ticket, connection } = listener.expect(5_000);
  const sent = connection.then(send);
  sent.catch(() => undefined);
  return { port: listener.port, ticket, sent, close: () => listener.close() };
}

describe('payloads over a connection the receiver dials', () => {
  test('a payload read in place by a slow consumer arrives byte for byte, each chunk intact until the one after next', async (t) => {
    // Small chunks and reads, so the socket pauses often and reads land in the spare.
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const sender = await offer(data);
    t.after(sender.close);
    const fetched = await fetchPayload(
      { host: '127.0.0.1', port: sender.port, ticket: sender.ticket, bytes: data.length },
      allocateStagingBuffers(16 * 1024, 64 * 1024, 3),
    );
    t.after(fetched.close);
    const held: { at: number; chunk: Buffer }[] = [];
    let at = 0;
    for await (const chunk of fetched.chunks) {
      // The consumer may still hold the previous chunk: it must be unchanged.
      for (const h of held)
        assert.ok(h.chunk.equals(data.subarray(h.at, h.at + h.chunk.length)), `chunk at ${h.at}`);
      assert.ok(chunk.equals(data.subarray(at, at + chunk.length)), `chunk at ${at}`);
      held.splice(0, held.length, { at, chunk });
      at += chunk.length;
      if (at % (512 * 1024) < chunk.length) await sleep(3);
    }
    assert.equal(at, data.length);
    await sender.sent;
  });

  test('a payload of 0 bytes ends at once', async (t) => {
    const sender = await offer(Buffer.alloc(0));
    t.after(sender.close);
    const fetched = await fetchPayload(
      { host: '127.0.0.1', port: sender.port, ticket: sender.ticket, bytes: 0 },
      allocateStagingBuffers(),
    );
    t.after(fetched.close);
    const chunks: Buffer[] = [];
    for await (const chunk of fetched.chunks) chunks.push(chunk);
    assert.deepEqual(chunks, []);
  });

  test('a sender that stops short, or sends more than announced, fails the receive', async (t) => {
    const data = randomBytes(200_000);
    const short = await offer(data, async (socket) => {
      await sendPayload(socket, 150_000, chunksOf(data.subarray(0, 150_000), 50_000));
      socket.end();
    });
    t.after(short.close);
    const fetchedShort = await fetchPayload(
      { host: '127.0.0.1', port: short.port, ticket: short.ticket, bytes: data.length },
      allocateStagingBuffers(16 * 1024, 64 * 1024, 3),
    );
    t.after(fetchedShort.close);
    await assert.rejects(
      async () => {
        for await (const chunk of fetchedShort.chunks) assert.ok(chunk.length > 0);
      },
      { message: /closed the connection after 150000 of 200000 bytes/ },
    );

    const long = await offer(data);
    t.after(long.close);
    const fetchedLong = await fetchPayload(
      { host: '127.0.0.1', port: long.port, ticket: long.ticket, bytes: 100_000 },
      allocateStagingBuffers(16 * 1024, 64 * 1024, 3),
    );
    t.after(fetchedLong.close);
    await assert.rejects(
      async () => {
        for await (const chunk of fetchedLong.chunks) assert.ok(chunk.length > 0);
      },
      { message: /sent more than the announced 100000 bytes/ },
    );
  });

  test('a connection with a wrong ticket gets nothing and is closed', async (t) => {
    const data = randomBytes(1000);
    const sender = await offer(data);
    t.after(sender.close);
    const fetched = await fetchPayload(
      { host: '127.0.0.1', port: sender.port, ticket: 'f'.repeat(32), bytes: data.length },
      allocateStagingBuffers(),
    );
    t.after(fetched.close);
    await assert.rejects(
      async () => {
        for await (const chunk of fetched.chunks) assert.ok(chunk.length > 0);
      },
      { message: /closed the connection after 0 of 1000 bytes/ },
    );
  });

  test('an unreachable sender is reported, naming where', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await assert.rejects(
      fetchPayload(
        { host: '127.0.0.1', port, ticket: 'a'.repeat(32), bytes: 10 },
        allocateStagingBuffers(),
      ),
      { message: new RegExp(`cannot connect back to 127\\.0\\.0\\.1:${port}`) },
    );
  });
});

describe('PeerClient with a peer that does not fetch offers', () => {
  const servers: Server[] = [];
  after(() => servers.forEach((s) => s.close()));

  /**
   * A peer that answers `offer-shard` as told and stores pushed `put-shard` payloads in memory:
   * an older daemon (no offers) or one that cannot connect back.
   */
  async function fakePeer(offerReply: Record<string, unknown>): Promise<{
    port: number;
    offers: () => number;
    pushed: Buffer[];
  }> {
    let offers = 0;
    const pushed: Buffer[] = [];
    const server = createServer((socket) => {
      socket.on('error', () => socket.destroy());
      void (async () => {
        const reader = new FrameReader(socket);
        // The handshake a real peer runs (peer-auth.ts), with node-b's side of the key.
        const serverNonce = newNonce();
        await sendFrame(socket, { op: 'challenge', nonce: serverNonce });
        const hello = (await reader.next())?.header;
        const transcript = {
          serverNonce,
          clientNonce: String(hello?.clientNonce),
          job: 'job-a',
          attempt: 0,
          from: 'node-a',
          to: 'node-b',
        };
        if (!macEquals(String(hello?.mac), helloMac(key, transcript))) {
          socket.destroy();
          return;
        }
        await sendFrame(socket, { op: 'welcome', mac: welcomeMac(key, transcript) });
        for (;;) {
          const frame = await reader.next();
          if (frame === null) return;
          if (frame.header.op === 'offer-shard') {
            offers += 1;
            await sendFrame(socket, { op: 'error', ...offerReply });
          } else if (frame.header.op === 'put-shard') {
            const got: Buffer[] = [];
            for await (const piece of frame.payload ?? []) got.push(Buffer.from(piece));
            pushed.push(Buffer.concat(got));
            await sendFrame(socket, { op: 'ok' });
          }
        }
      })().catch(() => socket.destroy());
    });
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return { port: (server.address() as { port: number }).port, offers: () => offers, pushed };
  }

  function recordOf(data: Buffer, step: number): ShardRecord {
    return shardRecordSchema.parse({
      format: 'cube.shard/1',
      job: 'job-a',
      step,
      rank: 0,
      worldSize: 1,
      file: `step-${step}/rank-00000.safetensors`,
      bytes: data.length,
      xxh3: xxh3Hex(data),
      node: 'node-a',
      savedAt: '2026-11-30T00:00:00.000Z',
    });
  }

  for (const [why, reply] of [
    ['predates offers', { code: 'INVALID_VALUE', message: 'bad peer request: Invalid input' }],
    [
      'cannot connect back',
      { code: 'INFEASIBLE', message: 'cannot connect back', dialBack: 'failed' },
    ],
  ] as const)
    test(`a peer that ${why} gets the shard pushed, and no more offers`, async () => {
      const peer = await fakePeer(reply);
      const client = clientOf(peer.port);
      try {
        const first = randomBytes(300_000);
        const second = randomBytes(70_000);
        await client.putShard(recordOf(first, 1), [0], chunksOf(first, 64 * 1024));
        await client.putShard(recordOf(second, 2), [0], chunksOf(second, 64 * 1024));
        assert.equal(peer.offers(), 1);
        assert.equal(peer.pushed.length, 2);
        assert.ok(peer.pushed[0]?.equals(first));
        assert.ok(peer.pushed[1]?.equals(second));
      } finally {
        client.close();
      }
    });

  test('a closed client offers nothing more (it would open a listener nobody closes)', async () => {
    const peer = await fakePeer({ code: 'INFEASIBLE', message: 'unused' });
    const client = clientOf(peer.port);
    client.close();
    const data = randomBytes(1000);
    await assert.rejects(client.putShard(recordOf(data, 1), [0], chunksOf(data, 512)), {
      message: /connection to peer node-b closed/,
    });
    assert.equal(peer.offers(), 0);
  });

  test('any other refusal of an offer is the error, with no push', async () => {
    const peer = await fakePeer({ code: 'INFEASIBLE', message: 'no space left for replicas' });
    const client = clientOf(peer.port);
    try {
      const data = randomBytes(1000);
      await assert.rejects(client.putShard(recordOf(data, 1), [0], chunksOf(data, 512)), {
        message: /peer node-b: no space left for replicas/,
      });
      assert.equal(peer.pushed.length, 0);
    } finally {
      client.close();
    }
  });
});
