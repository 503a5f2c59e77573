// The receiving end of the raw TCP baseline of the replication bench (throughput.ts): a minimal
// node `net` program in its own process, like a peer daemon. Each control connection carries
// one transfer: a 4-byte big-endian length of a JSON header `{bytes, path, dial}`, then:
//
// - `dial: null` ("accepted"): `bytes` raw bytes follow on the same connection, read as an
//   accepted node socket reads them ('data' events, a fresh 64 KiB buffer per read);
// - `dial: <port>` ("dialed", the baseline Cube is measured against): the sink connects to
//   127.0.0.1:<port> and reads `bytes` raw bytes there into one reused 1 MiB buffer (`onread`),
//   as Cube's receiving daemon does since it fetches offered shards over a connection it dials.
//
// With a `path` the bytes are written to that file as they arrive (`fs.writeSync`), then the
// file is fsynced (like a replica at L2); with `path: null` they are discarded (the loopback
// limit of a node receiver). The sink answers one byte (1) on the control connection when done.
//
//   node --import tsx bench/ckpt/raw-tcp-sink.ts   -> prints {"port": N}, serves until SIGTERM
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';

interface Transfer {
  readonly bytes: number;
  readonly path: string | null;
  readonly dial: number | null;
}

/** Counts (and writes, with a file) received bytes; calls `done` after the last one. */
function sinkInto(transfer: Transfer, done: () => void): (bytes: Uint8Array) => void {
  const fd = transfer.path === null ? null : openSync(transfer.path, 'w');
  let left = transfer.bytes;
  return (bytes) => {
    if (fd !== null) {
      let at = 0;
      while (at < bytes.byteLength) at += writeSync(fd, bytes, at);
    }
    left -= bytes.byteLength;
    if (left <= 0) {
      if (fd !== null) {
        fsyncSync(fd);
        closeSync(fd);
      }
      done();
    }
  };
}

const readBuffer = Buffer.allocUnsafe(1 << 20);

function receive(control: Socket): void {
  let buffered = Buffer.alloc(0);
  let take: ((bytes: Uint8Array) => void) | null = null;
  control.on('error', (error) => {
    process.stderr.write(`raw-tcp-sink: ${error.message}\n`);
    control.destroy();
  });
  control.on('data', (piece: Buffer) => {
    if (take !== null) {
      take(piece);
      return;
    }
    buffered = Buffer.concat([buffered, piece]);
    if (buffered.length < 4) return;
    const n = buffered.readUInt32BE(0);
    if (buffered.length < 4 + n) return;
    const transfer = JSON.parse(buffered.subarray(4, 4 + n).toString('utf8')) as Transfer;
    const rest = buffered.subarray(4 + n);
    if (transfer.dial === null) {
      take = sinkInto(transfer, () => control.end(Buffer.from([1])));
      if (rest.length > 0) take(rest);
      return;
    }
    const data: Socket = connect({
      host: '127.0.0.1',
      port: transfer.dial,
      onread: {
        buffer: readBuffer,
        callback: (got, buffer) => {
          sink(buffer.subarray(0, got));
          return true;
        },
      },
    });
    const sink = sinkInto(transfer, () => {
      data.destroy();
      control.end(Buffer.from([1]));
    });
    data.on('error', (error) => process.stderr.write(`raw-tcp-sink: ${error.message}\n`));
  });
}

const server = createServer(receive);
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
