// The peer frame reader against hostile byte streams over a real TCP connection: arbitrary
// bytes split at arbitrary points, truncated frames, lying length prefixes and huge declared
// payload sizes. The reader returns frames or rejects with a CubeError; it never throws
// anything else, never allocates a declared size up front and never hangs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import fc from 'fast-check';
import { CubeError } from '../../src/core/index.ts';
import { FrameReader } from '../../src/ckpt/daemon/frames.ts';
import { fuzzParams, within } from './fuzz-config.ts';

let server: Server;
let port: number;
const accepted: Socket[] = [];
const waiting: ((socket: Socket) => void)[] = [];

before(async () => {
  server = createServer((socket) => {
    const w = waiting.shift();
    if (w === undefined) accepted.push(socket);
    else w(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** A connected pair: `client` writes, `reader` reads what the server side receives. */
async function pair(): Promise<{ client: Socket; serverSide: Socket; reader: FrameReader }> {
  const serverSide = new Promise<Socket>((resolve) => {
    const early = accepted.shift();
    if (early === undefined) waiting.push(resolve);
    else resolve(early);
  });
  const client = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  const s = await serverSide;
  return { client, serverSide: s, reader: new FrameReader(s) };
}

interface ReadFrame {
  header: Record<string, unknown>;
  payload: Buffer;
}

/** Reads every frame (draining payloads by pieces or by runs) until the stream ends. */
async function readAll(reader: FrameReader, byRuns: boolean): Promise<ReadFrame[]> {
  const frames: ReadFrame[] = [];
  for (;;) {
    const frame = await reader.next();
    if (frame === null) return frames;
    const pieces: Buffer[] = [];
    if (byRuns && frame.runs !== null) for await (const run of frame.runs) pieces.push(...run);
    else if (frame.payload !== null) for await (const piece of frame.payload) pieces.push(piece);
    frames.push({ header: { ...frame.header }, payload: Buffer.concat(pieces) });
  }
}

/** Writes `bytes` cut at `cuts` (fractions of its length), one write per piece, then ends. */
async function sendSplit(client: Socket, bytes: Buffer, cuts: readonly number[]): Promise<void> {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].sort((a, b) => a - b);
  let at = 0;
  for (const p of [...points, bytes.length]) {
    if (p <= at) continue;
    await new Promise<void>((resolve) => client.write(bytes.subarray(at, p), () => resolve()));
    at = p;
  }
  client.end();
}

/** Runs one case: sends `bytes` and reads; returns the frames or the error the reader threw. */
async function feed(
  bytes: Buffer,
  cuts: readonly number[],
  byRuns: boolean,
): Promise<{ frames: ReadFrame[] } | { error: unknown }> {
  const { client, serverSide, reader } = await pair();
  try {
    const reading = readAll(reader, byRuns).then(
      (frames) => ({ frames }),
      (error: unknown) => ({ error }),
    );
    await sendSplit(client, bytes, cuts);
    return await within(5000, 'reading the frames', reading);
  } finally {
    client.destroy();
    serverSide.destroy();
  }
}

function encodeFrame(header: Record<string, unknown>, payload?: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(json.length, 0);
  return Buffer.concat([prefix, json, payload ?? Buffer.alloc(0)]);
}

const cutsArb = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 });

function assertCubeError(outcome: { frames: ReadFrame[] } | { error: unknown }): void {
  if ('error' in outcome)
    assert.ok(
      outcome.error instanceof CubeError,
      `the reader threw a non-CubeError: ${String((outcome.error as Error)?.stack ?? outcome.error)}`,
    );
}

test('arbitrary byte streams split anywhere give frames or a CubeError, never a crash or a hang', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ maxLength: 600 }),
      cutsArb,
      fc.boolean(),
      async (bytes, cuts, byRuns) => assertCubeError(await feed(Buffer.from(bytes), cuts, byRuns)),
    ),
    fuzzParams(200, 0.05),
  );
});

const headerArb = fc.record({
  op: fc.constantFrom('get-shard', 'put-shard', 'hello', 'ok', 'error'),
  job: fc.string({ maxLength: 20 }),
  step: fc.nat(),
});

const frameArb = fc.tuple(headerArb, fc.uint8Array({ maxLength: 300 }));

test('valid frames split at any points are read back exactly, by pieces and by runs', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(frameArb, { maxLength: 5 }),
      cutsArb,
      fc.boolean(),
      async (frames, cuts, byRuns) => {
        const wire = Buffer.concat(
          frames.map(([h, p]) =>
            encodeFrame(p.length > 0 ? { ...h, bytes: p.length } : h, Buffer.from(p)),
          ),
        );
        const outcome = await feed(wire, cuts, byRuns);
        if ('error' in outcome) assert.fail(`valid frames were refused: ${String(outcome.error)}`);
        assert.equal(outcome.frames.length, frames.length);
        outcome.frames.forEach((got, i) => {
          const [h, p] = frames[i] as [Record<string, unknown>, Uint8Array];
          assert.equal(got.header.op, h.op);
          assert.deepEqual(got.payload, Buffer.from(p));
        });
      },
    ),
    fuzzParams(100, 0.05),
  );
});

/** Mutations of a valid wire image: a flipped byte, a cut, a lying length or byte count. */
const mutatedWireArb = fc
  .tuple(
    fc.array(frameArb, { minLength: 1, maxLength: 3 }),
    fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.nat(255) }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({
        kind: fc.constant('length' as const),
        value: fc.oneof(fc.nat(), fc.constantFrom(0, 1, 2 ** 20, 2 ** 20 + 1, 2 ** 32 - 1)),
      }),
      fc.record({
        kind: fc.constant('bytes' as const),
        value: fc.constantFrom<unknown>(
          -1,
          1.5,
          2 ** 53,
          2 ** 40,
          Number.MAX_SAFE_INTEGER,
          '12',
          null,
          [],
          {},
          1e308,
        ),
      }),
      fc.record({
        kind: fc.constant('header' as const),
        text: fc.constantFrom('null', '[]', '"x"', '1', '{', '{"op":1}', '{"op":"x","bytes":-5}'),
      }),
    ),
  )
  .map(([frames, mutation]) => {
    const [h0, p0] = frames[0] as [Record<string, unknown>, Uint8Array];
    const rest = frames
      .slice(1)
      .map(([h, p]) => encodeFrame(p.length > 0 ? { ...h, bytes: p.length } : h, Buffer.from(p)));
    let first: Buffer;
    switch (mutation.kind) {
      case 'bytes':
        first = encodeFrame({ ...h0, bytes: mutation.value }, Buffer.from(p0));
        break;
      case 'header': {
        const json = Buffer.from(mutation.text, 'utf8');
        const prefix = Buffer.alloc(4);
        prefix.writeUInt32BE(json.length, 0);
        first = Buffer.concat([prefix, json]);
        break;
      }
      case 'flip':
      case 'truncate':
      case 'length':
        first = encodeFrame(p0.length > 0 ? { ...h0, bytes: p0.length } : h0, Buffer.from(p0));
        break;
      default:
        first = mutation satisfies never;
    }
    let wire = Buffer.concat([first, ...rest]);
    if (mutation.kind === 'flip' && wire.length > 0) {
      wire = Buffer.from(wire);
      wire[mutation.at % wire.length] = mutation.value;
    } else if (mutation.kind === 'truncate') {
      wire = wire.subarray(0, mutation.at % (wire.length + 1));
    } else if (mutation.kind === 'length') {
      wire = Buffer.from(wire);
      wire.writeUInt32BE(mutation.value % 2 ** 32, 0);
    }
    return wire;
  });

test('truncated frames, lying length prefixes and bad byte counts are CubeErrors', async () => {
  await fc.assert(
    fc.asyncProperty(mutatedWireArb, cutsArb, fc.boolean(), async (wire, cuts, byRuns) =>
      assertCubeError(await feed(wire, cuts, byRuns)),
    ),
    fuzzParams(200, 0.05),
  );
});

test('a frame declaring a huge payload is not allocated up front and fails when the peer stops', async () => {
  for (const declared of [2 ** 40, Number.MAX_SAFE_INTEGER, 8 * 2 ** 30]) {
    const before = process.memoryUsage().arrayBuffers;
    const wire = Buffer.concat([
      encodeFrame({ op: 'put-shard', bytes: declared }),
      Buffer.alloc(1000, 7),
    ]);
    const outcome = await feed(wire, [0.5], false);
    assert.ok('error' in outcome, 'a payload cut short must be an error');
    assert.ok(outcome.error instanceof CubeError);
    assert.match(outcome.error.message, /closed mid-payload/);
    // Allocating the declared size would need gigabytes; what was read is a few kilobytes.
    assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024);
  }
});

test('a header longer than the limit is refused before its bytes arrive', async () => {
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(2 ** 32 - 1, 0);
  const { client, serverSide, reader } = await pair();
  try {
    // Only the prefix is sent and the connection stays open: the reader must not wait.
    client.write(prefix);
    const error = await within(
      5000,
      'refusing the header length',
      reader.next().then(
        () => null,
        (e: unknown) => e,
      ),
    );
    assert.ok(error instanceof CubeError);
    assert.match(error.message, /bad frame header length/);
  } finally {
    client.destroy();
    serverSide.destroy();
  }
});
