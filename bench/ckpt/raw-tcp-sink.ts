// The receiving end of the raw TCP baseline of the replication bench (throughput.ts): a minimal
// node `net` server in its own process, like a peer daemon. Each connection carries one
// transfer: a 4-byte big-endian length of a JSON header `{bytes, path}`, then `bytes` raw bytes.
// With a `path` the bytes are written to that file as they arrive (`fs.writeSync`), then the
// file is fsynced (like a replica at L2); with `path: null` they are discarded (the loopback
// limit of a node receiver). The server answers one byte (1) when done.
//
//   node --import tsx bench/ckpt/raw-tcp-sink.ts   -> prints {"port": N}, serves until SIGTERM
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';

interface Transfer {
  readonly bytes: number;
  readonly path: string | null;
}

function receive(socket: Socket): void {
  let buffered = Buffer.alloc(0);
  let transfer: Transfer | null = null;
  let left = 0;
  let fd: number | null = null;
  socket.on('error', (error) => {
    process.stderr.write(`raw-tcp-sink: ${error.message}\n`);
    socket.destroy();
  });
  socket.on('data', (piece: Buffer) => {
    let chunk = piece;
    if (transfer === null) {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 4) return;
      const n = buffered.readUInt32BE(0);
      if (buffered.length < 4 + n) return;
      transfer = JSON.parse(buffered.subarray(4, 4 + n).toString('utf8')) as Transfer;
      left = transfer.bytes;
      if (transfer.path !== null) fd = openSync(transfer.path, 'w');
      chunk = buffered.subarray(4 + n);
    }
    if (fd !== null) {
      let at = 0;
      while (at < chunk.length) at += writeSync(fd, chunk, at);
    }
    left -= chunk.length;
    if (left <= 0) {
      if (fd !== null) {
        fsyncSync(fd);
        closeSync(fd);
        fd = null;
      }
      socket.end(Buffer.from([1]));
    }
  });
}

const server = createServer(receive);
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
