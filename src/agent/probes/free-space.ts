import { statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { HealthProbe } from './health-probe.ts';

/**
 * Bytes an unprivileged writer can still use on the file system holding `path` (or, while it
 * does not exist yet, its nearest existing ancestor); null if unknown.
 */
export async function freeBytes(path: string): Promise<number | null> {
  let at = resolve(path);
  for (;;) {
    try {
      const s = await statfs(at);
      return Number(s.bavail) * Number(s.bsize);
    } catch (error) {
      const parent = dirname(at);
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || parent === at) return null;
      at = parent;
    }
  }
}

/**
 * Fails when the file system of the path `path()` names has less than `minFreeBytes` free, or
 * cannot be read. A null path (nothing to check yet) passes.
 */
export function freeSpaceProbe(
  name: string,
  path: () => string | null,
  options: { readonly minFreeBytes: number },
): HealthProbe {
  return {
    name,
    async run() {
      const where = path();
      if (where === null) return { name, ok: true, message: 'nothing to check' };
      const bytes = await freeBytes(where);
      if (bytes === null) return { name, ok: false, message: `cannot read free space of ${where}` };
      const ok = bytes >= options.minFreeBytes;
      return {
        name,
        ok,
        message: ok
          ? `${formatBytes(bytes)} free at ${where}`
          : `only ${formatBytes(bytes)} free at ${where}, below ${formatBytes(options.minFreeBytes)}`,
      };
    },
  };
}

function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${bytes} B`;
}
