// The checkpoint benchmarks, all configurations in one run: `npm run bench:ckpt [-- flags]`.
//
// For every state size (per rank) and rank count it runs, one after the other (each in its own
// processes, so one configuration's memory is gone before the next starts):
//   1. stall.py        the training-visible stall of save() vs a raw copy and torch.save+fsync
//   2. slowdown.py     step-time slowdown while the daemons replicate (L2) and persist (L3)
//   3. throughput.ts   L3 persistStep vs dd; L2 replication vs a raw TCP stream
//   4. restore_time.py load_latest() from L1, L2 and L3, and its checksum share
//   5. peers.py        Cube against dcp.save, dcp.async_save, DLRover and torch.save on one FSDP2
//                      state: stall, time to durable, step slowdown
// and prints every bench's table as it goes, then all rows together. See bench/ckpt/README.md.
// Before each bench it syncs and waits (up to a minute) for the disk to go quiet.
//
// Flags: --sizes 256M,1G,4G  --ranks 1,2  --parts stall,slowdown,throughput,restore,peers
//        --repeats N (override every bench's default)  --bandwidth-mbps 100 (the replication
//        cap of the capped slowdown variant)  --capped-max-size 1G / --nice-max-size 512M (the
//        largest total state, size x ranks, that also runs the capped / the nice variant)
//        --slowdown-variants plain,default,cap,nice (all sizes)  --big-throughput (also run the
//        throughput bench for more than 4 GiB of state in all)  --shm /dev/shm  --disk /tmp
//        --json FILE (all rows as JSON lines)  --markdown FILE (all rows as a Markdown table)
//        --peers-python PATH (the interpreter of the peers part, e.g. a venv that also has
//        dlrover[torch] for its row; default the project's)  --peers a,b (which peers)
//        --check FILE (run nothing: judge the rows of a --json file, e.g. stall_cuda.py's, against
//        their physical floors)
// A row whose figure beats its physical floor (floor.ts: e.g. a save that blocks for less than a
// memcpy of its bytes measured in the same run) is FLOOR: the run prints why and exits 1.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  configName,
  fmtSize,
  memAvailable,
  parseSize,
  printTable,
  python,
  readRows,
  repoRoot,
  row,
  skipRow,
  writeRows,
  type Row,
} from './common.ts';
import { applyFloor } from './floor.ts';
import { waitForQuietDisk } from './quiet-disk.ts';

const parts = ['stall', 'slowdown', 'throughput', 'restore', 'peers'] as const;
type Part = (typeof parts)[number];

function machine(shm: string, disk: string): string {
  const model = cpus()[0]?.model ?? '?';
  const fsType = (path: string): string => {
    const r = spawnSync('findmnt', ['-no', 'FSTYPE', '-T', path], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : '?';
  };
  const shmSize = statfsSync(shm);
  const torch = spawnSync(
    python,
    ['-c', 'import torch, numpy; print(torch.__version__, numpy.__version__)'],
    {
      encoding: 'utf8',
    },
  ).stdout.trim();
  return [
    `date ${new Date().toISOString()}`,
    `${cpus().length} x ${model}, ${fmtSize(totalmem())} RAM (${fmtSize(memAvailable())} available), kernel ${release()}`,
    `L1 ${shm} (${fsType(shm)}, ${fmtSize(shmSize.blocks * shmSize.bsize)}); disk ${disk} (${fsType(disk)})`,
    `node ${process.version}; python ${python} torch/numpy ${torch}; load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  ].join('\n');
}

/** Milliseconds per 512x512 matmul on each CPU (`cpu_speed.py`), or null when the probe failed. */
function probeCpuSpeed(env: NodeJS.ProcessEnv): Record<string, number> | null {
  const r = spawnSync(python, ['bench/ckpt/cpu_speed.py'], {
    cwd: repoRoot,
    env,
    encoding: 'utf8',
  });
  if (r.status !== 0) return null;
  try {
    return (JSON.parse(r.stdout) as { ms_per_matmul: Record<string, number> }).ms_per_matmul;
  } catch {
    return null;
  }
}

/**
 * An info row: how fast each CPU ran the same work before and after a bench, and the ratio of
 * the slowest to the fastest of those figures (a virtual machine's vCPUs drift apart and
 * together as the host is busy, and every other figure of the bench drifts with them).
 */
function cpuSpeedRow(
  part: string,
  cfg: string,
  before: Record<string, number> | null,
  after: Record<string, number> | null,
): Row {
  const cpusSeen = Object.keys(before ?? after ?? {});
  const all = [...Object.values(before ?? {}), ...Object.values(after ?? {})];
  const show = (speed: Record<string, number> | null, cpu: string): string =>
    speed?.[cpu] === undefined ? '?' : speed[cpu].toFixed(0);
  return row({
    bench: part,
    config: cfg,
    metric: 'CPU speed before -> after (ms per 512x512 matmul, by CPU)',
    cube: cpusSeen.map((c) => `cpu${c} ${show(before, c)} -> ${show(after, c)}`).join(', '),
    baseline: 'the fastest of these',
    ratio: all.length === 0 ? null : Math.max(...all) / Math.min(...all),
    target: '-',
    result: 'info',
    note: 'bench/ckpt/cpu_speed.py; a ratio well above 1 means the machine itself changed speed, by that much, around this bench',
  });
}

/** The rows as a Markdown table (for bench/ckpt/README.md), notes in the last column. */
function markdownTable(rows: readonly Row[]): string {
  const esc = (x: string): string => x.replaceAll('|', '\\|');
  const lines = [
    '| bench | configuration | metric | Cube | baseline | ratio | target | result | note |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows
      .map((r) =>
        [
          r.bench,
          r.config,
          r.metric,
          r.cube,
          r.baseline,
          r.ratio === null || Number.isNaN(r.ratio) ? '-' : `${r.ratio.toFixed(2)}x`,
          r.target.replace('<=', '≤').replace('>=', '≥'),
          r.result === 'PASS' || r.result === 'MISS' || r.result === 'FLOOR'
            ? `**${r.result}**`
            : r.result,
          r.note,
        ]
          .map(esc)
          .join(' | '),
      )
      .map((l) => `| ${l} |`),
  ];
  return `${lines.join('\n')}\n`;
}

/** Names every row that beats its physical floor, and fails the run when there is one. */
function reportFloors(rows: readonly Row[]): void {
  const broken = rows.filter((r) => r.result === 'FLOOR');
  if (broken.length === 0) return;
  process.stdout.write(
    `\n${broken.length} row(s) beat their physical floor; their figures are not results:\n` +
      broken.map((r) => `  ${r.bench} ${r.config} "${r.metric}": ${r.note}\n`).join(''),
  );
  process.exitCode = 1;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '256M,1G,4G' },
      ranks: { type: 'string', default: '1,2' },
      parts: { type: 'string', default: parts.join(',') },
      repeats: { type: 'string' },
      'bandwidth-mbps': { type: 'string', default: '100' },
      'capped-max-size': { type: 'string', default: '1G' },
      'nice-max-size': { type: 'string', default: '512M' },
      'slowdown-variants': { type: 'string' },
      'big-throughput': { type: 'boolean', default: false },
      shm: { type: 'string', default: '/dev/shm' },
      disk: { type: 'string', default: tmpdir() },
      json: { type: 'string' },
      markdown: { type: 'string' },
      'peers-python': { type: 'string' },
      peers: { type: 'string' },
      check: { type: 'string' },
    },
  });
  if (values.check !== undefined) {
    const rows = readRows(values.check).map(applyFloor);
    printTable(rows, `Rows of ${values.check}`);
    reportFloors(rows);
    return;
  }
  // The peers part may need another interpreter: one that also has dlrover (a venv of its own).
  const peersPython = values['peers-python'] ?? python;
  const sizes = values.sizes.split(',').map(parseSize);
  const rankCounts = values.ranks.split(',').map(Number);
  const chosen = values.parts.split(',').map((p) => p.trim());
  for (const p of chosen)
    if (!(parts as readonly string[]).includes(p))
      throw new Error(`unknown part "${p}" (choose from ${parts.join(', ')})`);
  const cappedMax = parseSize(values['capped-max-size']);
  const niceMax = parseSize(values['nice-max-size']);
  // The rows go straight to --json when given (kept whatever happens), else to a temp file.
  const work = mkdtempSync(join(tmpdir(), 'cube-bench-rows-'));
  const rowsFile = values.json ?? join(work, 'rows.jsonl');
  if (values.json !== undefined) writeFileSync(values.json, '');
  const started = performance.now();
  process.stdout.write(`Cube checkpoint benchmarks\n${machine(values.shm, values.disk)}\n`);
  const env = {
    ...process.env,
    PYTHONPATH: join(repoRoot, 'python'),
    PYTHONDONTWRITEBYTECODE: '1',
    OMP_NUM_THREADS: '1',
  };
  const common = ['--shm', values.shm, '--disk', values.disk, '--json', rowsFile];
  const repeats = values.repeats === undefined ? [] : ['--repeats', values.repeats];
  try {
    for (const bytes of sizes)
      for (const ranks of rankCounts)
        for (const part of chosen as Part[]) {
          const cfg = configName(bytes, ranks);
          const size = ['--size', String(bytes), '--ranks', String(ranks)];
          let command: string[];
          switch (part) {
            case 'stall':
              command = [python, 'bench/ckpt/stall.py', ...size, ...repeats, ...common];
              break;
            case 'slowdown': {
              // Each variant costs a warm-up save plus the measured saves: the capped and the
              // nice variants only where that is affordable (see the flags).
              const variants =
                values['slowdown-variants'] ??
                [
                  'plain',
                  'default',
                  ...(bytes * ranks <= cappedMax ? ['cap'] : []),
                  ...(bytes * ranks <= niceMax ? ['nice'] : []),
                ].join(',');
              command = [
                python,
                'bench/ckpt/slowdown.py',
                ...size,
                '--bandwidth-mbps',
                values['bandwidth-mbps'],
                '--variants',
                variants,
                ...common,
              ];
              break;
            }
            case 'throughput':
              if (bytes * ranks > 4 * 2 ** 30 && !values['big-throughput']) {
                const why =
                  'time budget: more than 4 GiB in all is ~6 disk-bound copies per repetition; per-byte ' +
                  'figures are those of the 1-rank run (ranks are copied one after the other); --big-throughput runs it';
                writeRows([skipRow('throughput', cfg, why)], rowsFile);
                process.stdout.write(`[throughput] ${cfg}: skipped (${why})\n`);
                continue;
              }
              command = [
                process.execPath,
                '--import',
                'tsx',
                'bench/ckpt/throughput.ts',
                ...size,
                ...repeats,
                ...common,
              ];
              break;
            case 'restore':
              command = [python, 'bench/ckpt/restore_time.py', ...size, ...repeats, ...common];
              break;
            case 'peers':
              command = [
                peersPython,
                'bench/ckpt/peers.py',
                ...size,
                ...repeats,
                ...(values.peers === undefined ? [] : ['--peers', values.peers]),
                ...common,
              ];
              break;
            default:
              throw new Error(part satisfies never);
          }
          const settled = await waitForQuietDisk(values.disk);
          process.stdout.write(
            `[${part}] ${cfg}: disk ${settled.quiet ? 'quiet' : 'still busy'} after ${settled.seconds.toFixed(1)} s\n`,
          );
          const speedBefore = probeCpuSpeed(env);
          const t0 = performance.now();
          const [bin = '', ...args] = command;
          const r = spawnSync(bin, args, { cwd: repoRoot, env, stdio: 'inherit' });
          const seconds = (performance.now() - t0) / 1000;
          process.stdout.write(
            `[${part}] ${cfg}: ${seconds.toFixed(0)} s, load average ${loadavg()[0]?.toFixed(2) ?? '?'}\n`,
          );
          writeRows([cpuSpeedRow(part, cfg, speedBefore, probeCpuSpeed(env))], rowsFile);
          if (r.status !== 0)
            writeRows(
              [
                row({
                  bench: part,
                  config: cfg,
                  metric: '(failed)',
                  cube: '-',
                  baseline: '-',
                  ratio: null,
                  target: '-',
                  result: 'ERROR',
                  note: `exit ${r.status ?? r.signal}; see the output above`,
                }),
              ],
              rowsFile,
            );
        }
    const rows: Row[] = readRows(rowsFile).map(applyFloor);
    const order = (r: Row): number => (parts as readonly string[]).indexOf(r.bench);
    rows.sort((a, b) => order(a) - order(b));
    printTable(rows, 'All results');
    const count = (result: string): number => rows.filter((r) => r.result === result).length;
    process.stdout.write(
      `\n${count('PASS')} PASS, ${count('MISS')} MISS, ${count('FLOOR')} FLOOR, ${count('SKIP')} SKIP, ${count('ERROR')} ERROR; ` +
        `${((performance.now() - started) / 60000).toFixed(1)} min\n`,
    );
    if (values.markdown !== undefined) writeFileSync(values.markdown, markdownTable(rows));
    reportFloors(rows);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
