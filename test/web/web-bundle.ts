// Builds the dashboard's production bundle when it is missing or older than its sources, so
// the browser tests run against what the control plane serves, from a fresh clone too.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../python/launcher.ts';

export const webDist = join(repoRoot, 'web', 'dist');

function newestMtimeMs(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  let newest = s.mtimeMs;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtimeMs(join(path, name)));
  return newest;
}

/** True when `web/dist` is missing or older than `web/src`, its config or the lockfile. */
export function webBundleStale(): boolean {
  const index = join(webDist, 'index.html');
  if (!existsSync(index)) return true;
  const built = statSync(index).mtimeMs;
  const sources = [
    join(repoRoot, 'web', 'src'),
    join(repoRoot, 'web', 'index.html'),
    join(repoRoot, 'web', 'vite.config.ts'),
    join(repoRoot, 'package-lock.json'),
  ];
  return sources.some((p) => existsSync(p) && newestMtimeMs(p) > built);
}

/** Runs `vite build` (as `npm run build:web` does) when the bundle is stale. */
export function ensureWebBundle(): void {
  if (!webBundleStale()) return;
  const r = spawnSync(
    process.execPath,
    [
      join(repoRoot, 'node_modules', 'vite', 'bin', 'vite.js'),
      'build',
      '--config',
      'web/vite.config.ts',
    ],
    { cwd: repoRoot, encoding: 'utf8' },
  );
  if (r.status !== 0)
    throw new Error(`building the dashboard failed (vite build):\n${r.stdout}\n${r.stderr}`);
}
