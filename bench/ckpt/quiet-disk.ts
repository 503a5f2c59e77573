// Waits until the disk under a path is quiet, so one bench's writes, deletes and discards do not
// land on the next bench's measurements (a stall measured right after the throughput bench had
// deleted several GiB read 3.7x; rerun on a quiet machine, 1.1x).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The kernel's name of the whole block device under `path` ("vda" for /dev/vda1), or null. */
function blockDevice(path: string): string | null {
  const r = spawnSync('findmnt', ['-no', 'SOURCE', '-T', path], { encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout.startsWith('/dev/')) return null;
  const name = basename(r.stdout.trim());
  const pk = spawnSync('lsblk', ['-no', 'PKNAME', `/dev/${name}`], { encoding: 'utf8' });
  const parent = pk.status === 0 ? pk.stdout.trim() : '';
  return parent !== '' ? parent : name;
}

/** I/Os in flight and sectors written and discarded so far, from /proc/diskstats. */
function activity(device: string): { inFlight: number; sectors: number } | null {
  const line = readFileSync('/proc/diskstats', 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[2] === device);
  if (line === undefined) return null;
  const field = (i: number): number => Number(line[i] ?? 0);
  // Fields after major, minor, name: ... [9] sectors written, [11] I/Os in progress,
  // [16] sectors discarded (Linux 4.18+).
  return { inFlight: field(11), sectors: field(9) + field(16) };
}

/**
 * `sync`s, then waits until the disk under `path` has had no I/O in flight and no sector written
 * or discarded for `quietMs`, at most `timeoutMs`. Returns the seconds waited and whether the
 * disk went quiet (false: timed out, or the device could not be found).
 */
export async function waitForQuietDisk(
  path: string,
  options: { quietMs?: number; timeoutMs?: number } = {},
): Promise<{ seconds: number; quiet: boolean }> {
  const quietMs = options.quietMs ?? 1500;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const t0 = performance.now();
  spawnSync('sync');
  const device = blockDevice(path);
  if (device === null) return { seconds: (performance.now() - t0) / 1000, quiet: false };
  let last = activity(device);
  let quietSince = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    await sleep(250);
    const now = activity(device);
    if (now === null || last === null)
      return { seconds: (performance.now() - t0) / 1000, quiet: false };
    if (now.inFlight > 0 || now.sectors !== last.sectors) quietSince = performance.now();
    last = now;
    if (performance.now() - quietSince >= quietMs)
      return { seconds: (performance.now() - t0) / 1000, quiet: true };
  }
  return { seconds: (performance.now() - t0) / 1000, quiet: false };
}
