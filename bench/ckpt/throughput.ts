// Bench 3: L3 persistence and L2 replication throughput, against the raw tools.
//
// One configuration = a state size per rank and a rank count. The real Python client writes one
// committed L1 step (bench/ckpt/make_l1.py: slots on tmpfs). Then, repetition by repetition, in
// alternating order so the machine's drift hits both sides alike:
//
// - L3: the engine's `persistStep(L1 -> L3)` (what the daemon runs: stream each shard, hash,
//   write, fsync, rename, fsync the directory, record, manifest) into a fresh directory on disk,
//   against `dd if=<slot> of=<disk file> bs=4M conv=fsync` of the same files (dd's own timing).
//   Target: >= 90% of dd's throughput.
// - L2: `PeerClient.putShard` of each shard, read from L1 exactly as the daemon's replication
//   does, to a real peer daemon (`cube ckpt daemon`, its own process) that fetches the bytes
//   over a connection it dials, verifies, writes and fsyncs the replica and commits the L2
//   manifest; against a raw TCP stream of the same bytes (a node sender reading the slot into
//   one reused buffer, and a minimal node receiver, raw-tcp-sink.ts, in its own process, that
//   dials the sender as the daemon does, reads into one reused 1 MiB buffer, writes the bytes to
//   a file on the same filesystem and fsyncs it). With the replica on disk and on tmpfs; on
//   tmpfs also against the weaker receiver of the earlier runs (an accepted socket, 64 KiB
//   reads); the raw receiver discarding the bytes is reported as the loopback limit. Target:
//   >= 70% of the raw stream's throughput.
//
//   node --import tsx bench/ckpt/throughput.ts --size 1G --ranks 1 [--repeats 5]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { newMasterKey, PeerClient, peerAccessFor } from '../../src/ckpt/daemon/index.ts';
import {
  asStore,
  fileKey,
  persistStep,
  readRecord,
  type ShardRecord,
} from '../../src/ckpt/index.ts';
import {
  GIB,
  configName,
  fits,
  fmtSize,
  mbps,
  median,
  parseSize,
  printTable,
  python,
  repoRoot,
  row,
  skipRow,
  startWithJsonLine,
  stop,
  writeRows,
  type Row,
} from './common.ts';

const BENCH = 'throughput';

interface L1Step {
  readonly job: string;
  readonly step: number;
  readonly l1: string;
  readonly files: readonly string[];
  readonly bytes: readonly number[];
}

/** dd of every slot to `dir` (one file per rank, one after the other, as persistStep does). */
function ddCopy(step: L1Step, dir: string): number {
  mkdirSync(dir, { recursive: true });
  let seconds = 0;
  step.files.forEach((file, rank) => {
    const r = spawnSync(
      'dd',
      [`if=${file}`, `of=${join(dir, `rank-${rank}`)}`, 'bs=4M', 'conv=fsync'],
      { encoding: 'utf8' },
    );
    const m = /copied, ([\d.e+-]+) s/.exec(r.stderr);
    if (r.status !== 0 || m === null) throw new Error(`dd failed: ${r.stderr}`);
    seconds += Number(m[1]);
  });
  rmSync(dir, { recursive: true, force: true });
  return seconds;
}

/** The daemon's per-job pair of L1 read buffers, kept across repetitions as it keeps them. */
const readBuffers = [Buffer.allocUnsafe(8 << 20), Buffer.allocUnsafe(8 << 20)] as const;

async function persist(step: L1Step, l3: string): Promise<number> {
  const t0 = performance.now();
  const result = await persistStep(step.l1, l3, step.job, step.step, {
    from: 'L1',
    to: 'L3',
    readBuffers,
  });
  const seconds = (performance.now() - t0) / 1000;
  if (result.commit.kind === 'incomplete' || result.copied.length !== step.files.length)
    throw new Error(`persistStep did not commit: ${JSON.stringify(result.commit)}`);
  rmSync(l3, { recursive: true, force: true });
  return seconds;
}

/** Replicates every rank's shard the way CheckpointDaemon does (read L1 via the store, putShard). */
async function replicate(
  step: L1Step,
  records: readonly ShardRecord[],
  client: PeerClient,
  l2: string,
): Promise<number> {
  const l1 = asStore(step.l1);
  const setRanks = records.map((r) => r.rank);
  const t0 = performance.now();
  for (const record of records) {
    const payload = await l1.get(fileKey(record.job, record.file), {
      transient: true,
      buffers: readBuffers,
    });
    await client.putShard(record, setRanks, payload);
  }
  const seconds = (performance.now() - t0) / 1000;
  rmSync(join(l2, step.job), { recursive: true, force: true });
  return seconds;
}

/** Sends `file` on `socket`, one 8 MiB buffer refilled once the socket took it. */
async function streamFile(socket: Socket, file: string, buffer: Buffer): Promise<void> {
  const handle = await open(file, 'r');
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      await new Promise<void>((resolve, reject) =>
        socket.write(buffer.subarray(0, bytesRead), (e) => (e ? reject(e) : resolve())),
      );
    }
  } finally {
    await handle.close();
  }
}

/**
 * The raw stream: a control connection per shard; the sink writes to `dir` (or discards:
 * null). `dialed`: the sink connects back for the bytes and reads them 1 MiB at a time into one
 * buffer (what Cube's receiver does); `accepted`: the bytes follow on the connection the sink
 * accepted ('data' events, 64 KiB reads).
 */
async function rawSend(
  step: L1Step,
  port: number,
  dir: string | null,
  mode: 'dialed' | 'accepted' = 'dialed',
): Promise<number> {
  if (dir !== null) mkdirSync(dir, { recursive: true });
  const buffer = Buffer.allocUnsafe(8 << 20);
  const dataServer = createServer();
  const dialedIn: Socket[] = [];
  let wake: (() => void) | null = null;
  dataServer.on('connection', (socket) => {
    dialedIn.push(socket);
    wake?.();
  });
  await new Promise<void>((resolve) => dataServer.listen(0, '127.0.0.1', resolve));
  const dataPort = (dataServer.address() as AddressInfo).port;
  const t0 = performance.now();
  for (const [rank, file] of step.files.entries()) {
    const bytes = statSync(file).size;
    const control = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      control.once('connect', resolve);
      control.once('error', reject);
    });
    const reply = new Promise<void>((resolve) => control.once('data', () => resolve()));
    const header = Buffer.from(
      JSON.stringify({
        bytes,
        path: dir === null ? null : join(dir, `rank-${rank}`),
        dial: mode === 'dialed' ? dataPort : null,
      }),
    );
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(header.length);
    control.write(Buffer.concat([prefix, header]));
    if (mode === 'accepted') await streamFile(control, file, buffer);
    else {
      while (dialedIn.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      const data = dialedIn.shift() as Socket;
      await streamFile(data, file, buffer);
      data.end();
    }
    await reply;
    control.destroy();
  }
  const seconds = (performance.now() - t0) / 1000;
  dataServer.close();
  if (dir !== null) rmSync(dir, { recursive: true, force: true });
  return seconds;
}

/** The bench's checkpoint-peer master key: keys for its one sender and each peer. */
const master = newMasterKey();

async function startPeer(
  name: string,
  work: string,
  l2: string,
  job: string,
  ranks: number,
): Promise<{ stopIt: () => Promise<void>; client: PeerClient }> {
  mkdirSync(l2, { recursive: true });
  // What a control plane would grant: the bench (node bench-src) hosts every rank and
  // replicates to this peer.
  const placement = {
    job,
    attempt: 0,
    nodes: [
      { node: 'bench-src', ranks: Array.from({ length: ranks }, (_, r) => r), replicaPeer: name },
      { node: name, ranks: [], replicaPeer: null },
    ],
  };
  const accessFile = join(work, `${name}-peer-access.json`);
  writeFileSync(accessFile, JSON.stringify({ [job]: peerAccessFor(master, placement, name) }), {
    mode: 0o600,
  });
  const key = peerAccessFor(master, placement, 'bench-src').outgoing[0]?.key ?? '';
  const { child, line } = await startWithJsonLine(
    process.execPath,
    [
      join(repoRoot, 'bin/cube.js'),
      'ckpt',
      'daemon',
      '--node',
      name,
      '--l1',
      join(work, `${name}-l1`),
      '--l2',
      l2,
      '--socket',
      join(work, `${name}.sock`),
      '--listen',
      '127.0.0.1:0',
      '--peer-access',
      accessFile,
    ],
    'ready',
  );
  const port = Number((line.peer as { port: number }).port);
  const client = new PeerClient(
    { node: name, host: '127.0.0.1', port },
    { self: 'bench-src', credential: () => ({ attempt: 0, key }) },
  );
  return {
    client,
    stopIt: async () => {
      client.close();
      await stop(child);
    },
  };
}

async function runThroughput(options: {
  bytes: number;
  ranks: number;
  repeats: number;
  shm: string;
  disk: string;
  /** Also replicate to a peer whose L2 is on tmpfs (and stream raw to tmpfs). */
  tmpfs: boolean;
  /** Also stream raw to a receiver that discards (the loopback limit). */
  discard: boolean;
}): Promise<Row[]> {
  const { bytes, ranks, shm, disk } = options;
  const cfg = configName(bytes, ranks);
  // make_l1: one state plus a slot per rank; then the L1 step and, for the tmpfs replica, a
  // replica per rank on tmpfs.
  const why = fits(bytes, ranks * bytes * (options.tmpfs ? 2 : 1), shm);
  if (why !== null) return [skipRow(BENCH, cfg, why)];
  const repeats = options.repeats;
  const workShm = mkdtempSync(join(shm, 'cube-bench-tput-'));
  const workDisk = mkdtempSync(join(disk, 'cube-bench-tput-'));
  const stops: (() => Promise<void>)[] = [];
  const t = {
    dd: [] as number[],
    persist: [] as number[],
    l2Disk: [] as number[],
    rawDisk: [] as number[],
    l2Shm: [] as number[],
    rawShm: [] as number[],
    rawShmAccepted: [] as number[],
    rawNull: [] as number[],
  };
  let total = 0;
  try {
    const made = execFileSync(
      python,
      [
        join(repoRoot, 'bench/ckpt/make_l1.py'),
        '--l1',
        join(workShm, 'l1'),
        '--size',
        String(bytes),
        '--ranks',
        String(ranks),
      ],
      {
        cwd: repoRoot,
        encoding: 'utf8',
        env: { ...process.env, PYTHONPATH: join(repoRoot, 'python') },
      },
    );
    const step = JSON.parse(made.trim().split('\n').pop() ?? '{}') as L1Step;
    total = step.bytes.reduce((a, b) => a + b, 0);
    const records: ShardRecord[] = [];
    for (let r = 0; r < ranks; r += 1) {
      const read = await readRecord(step.l1, step.job, step.step, r);
      if (read.kind !== 'valid') throw new Error(`no L1 record of rank ${r}`);
      records.push(read.value);
    }
    const l2Disk = join(workDisk, 'peer-disk-L2');
    const l2Shm = join(workShm, 'peer-shm-L2');
    const peerDisk = await startPeer('peer-disk', workShm, l2Disk, step.job, ranks);
    stops.push(peerDisk.stopIt);
    const peerShm = options.tmpfs
      ? await startPeer('peer-shm', workShm, l2Shm, step.job, ranks)
      : null;
    if (peerShm !== null) stops.push(peerShm.stopIt);
    const sink = await startWithJsonLine(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'bench/ckpt/raw-tcp-sink.ts')],
      'port',
    );
    stops.push(() => stop(sink.child));
    const port = Number(sink.line.port);

    // A warm-up of the paths (JIT, connections), not reported; big states warm up in their
    // first chunks already.
    if (total < GIB) {
      await replicate(step, records, peerDisk.client, l2Disk);
      await rawSend(step, port, null);
    }
    for (let i = 0; i < repeats; i += 1) {
      const pairs: [() => Promise<void>, () => Promise<void>][] = [
        [
          () => Promise.resolve(void t.dd.push(ddCopy(step, join(workDisk, `dd-${i}`)))),
          async () => void t.persist.push(await persist(step, join(workDisk, `L3-${i}`))),
        ],
        [
          async () => void t.rawDisk.push(await rawSend(step, port, join(workDisk, `raw-${i}`))),
          async () => void t.l2Disk.push(await replicate(step, records, peerDisk.client, l2Disk)),
        ],
      ];
      if (peerShm !== null)
        pairs.push([
          async () => void t.rawShm.push(await rawSend(step, port, join(workShm, `raw-${i}`))),
          async () => void t.l2Shm.push(await replicate(step, records, peerShm.client, l2Shm)),
        ]);
      for (const [a, b] of pairs)
        if (i % 2 === 0) {
          await a();
          await b();
        } else {
          await b();
          await a();
        }
      if (peerShm !== null)
        t.rawShmAccepted.push(
          await rawSend(step, port, join(workShm, `raw-accepted-${i}`), 'accepted'),
        );
      if (options.discard) t.rawNull.push(await rawSend(step, port, null));
      process.stderr.write(`[${BENCH}] ${cfg}: repetition ${i + 1}/${repeats} done\n`);
    }
  } finally {
    for (const s of stops.reverse()) await s();
    rmSync(workShm, { recursive: true, force: true });
    rmSync(workDisk, { recursive: true, force: true });
  }

  const thr = (xs: number[]): number => mbps(total, median(xs));
  const f = (x: number): string => `${x.toFixed(0)} MB/s`;
  const n = `median of ${repeats}`;
  const rows = [
    row({
      bench: BENCH,
      config: cfg,
      metric: `L3 persist, persistStep tmpfs -> disk, fsync (${n})`,
      cube: f(thr(t.persist)),
      baseline: `dd bs=4M conv=fsync ${f(thr(t.dd))}`,
      ratio: thr(t.persist) / thr(t.dd),
      target: '>= 0.90',
      values: { persist_s: t.persist, dd_s: t.dd, bytes: total },
    }),
    row({
      bench: BENCH,
      config: cfg,
      metric: `L2 replication -> peer daemon, replica on disk (${n})`,
      cube: f(thr(t.l2Disk)),
      baseline: `raw TCP -> file on disk + fsync ${f(thr(t.rawDisk))}`,
      ratio: thr(t.l2Disk) / thr(t.rawDisk),
      target: '>= 0.70',
      values: { cube_s: t.l2Disk, raw_s: t.rawDisk, bytes: total },
    }),
    row({
      bench: BENCH,
      config: cfg,
      metric: `L2 replication -> peer daemon, replica on tmpfs (${n})`,
      cube: f(thr(t.l2Shm)),
      baseline: `raw TCP -> file on tmpfs + fsync ${f(thr(t.rawShm))}`,
      ratio: thr(t.l2Shm) / thr(t.rawShm),
      target: '>= 0.70',
      values: { cube_s: t.l2Shm, raw_s: t.rawShm, bytes: total },
    }),
    row({
      bench: BENCH,
      config: cfg,
      metric: `L2 -> tmpfs against the weaker raw receiver: an accepted socket's 64 KiB reads (${n})`,
      cube: f(thr(t.l2Shm)),
      baseline: `raw TCP, accepted socket -> tmpfs + fsync ${f(thr(t.rawShmAccepted))}`,
      ratio: thr(t.l2Shm) / thr(t.rawShmAccepted),
      target: '-',
      values: { cube_s: t.l2Shm, raw_s: t.rawShmAccepted, bytes: total },
    }),
    row({
      bench: BENCH,
      config: cfg,
      metric: `loopback limit: raw TCP, node receiver discarding (${n})`,
      cube: '-',
      baseline: f(thr(t.rawNull)),
      ratio: null,
      target: '-',
      values: { raw_null_s: t.rawNull, bytes: total },
    }),
  ];
  return rows.filter(
    (r) =>
      (options.tmpfs || !(r.metric.includes('on tmpfs') || r.metric.startsWith('L2 -> tmpfs'))) &&
      (options.discard || !r.metric.startsWith('loopback')),
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '256M' },
      ranks: { type: 'string', default: '1' },
      repeats: { type: 'string' },
      shm: { type: 'string', default: '/dev/shm' },
      disk: { type: 'string', default: tmpdir() },
      json: { type: 'string' },
      variants: { type: 'string' },
    },
  });
  const bytes = parseSize(values.size);
  const ranks = Number(values.ranks);
  // Every repetition copies the state 4 to 7 times: fewer repetitions, and above 1 GiB in all
  // only the on-disk paths (the tmpfs replica and the discarding receiver measure the protocol
  // overhead, the same per byte at 1 GiB), for the big states.
  const total = bytes * ranks;
  const repeats = values.repeats !== undefined ? Number(values.repeats) : total >= GIB ? 3 : 5;
  const variants = (values.variants ?? (total > GIB ? 'disk' : 'disk,tmpfs,discard'))
    .split(',')
    .map((v) => v.trim());
  process.stdout.write(
    `[${BENCH}] ${configName(bytes, ranks)}: ${fmtSize(bytes)} per rank, ${repeats} repeats\n`,
  );
  const rows = await runThroughput({
    bytes,
    ranks,
    repeats,
    shm: values.shm,
    disk: values.disk,
    tmpfs: variants.includes('tmpfs'),
    discard: variants.includes('discard'),
  });
  printTable(rows, `L3 persist and L2 replication throughput, ${configName(bytes, ranks)}`);
  writeRows(rows, values.json);
}

await main();
