import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What `cube_build_info` reports: the package version, the git commit, the Node version. */
export interface BuildInfo {
  readonly version: string;
  /** The checkout's HEAD commit, or `unknown` outside a git checkout (an npm install). */
  readonly commit: string;
  readonly nodeVersion: string;
}

let cached: BuildInfo | null = null;

/**
 * This installation's build facts, read once from the nearest `package.json` above this file and
 * the checkout's `.git` (files only: no `git` process, so a scrape never waits on one).
 */
export function buildInfo(): BuildInfo {
  if (cached !== null) return cached;
  const root = packageRoot(dirname(fileURLToPath(import.meta.url)));
  let version = 'unknown';
  let commit = 'unknown';
  if (root !== null) {
    try {
      const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
        version?: unknown;
      };
      if (typeof pkg.version === 'string') version = pkg.version;
    } catch {
      // A damaged package.json leaves the version unknown; metrics must not fail for it.
    }
    commit = headCommit(join(root, '.git')) ?? 'unknown';
  }
  cached = { version, commit, nodeVersion: process.version };
  return cached;
}

function packageRoot(from: string): string | null {
  // Sources run from src/core/, compiled code from a dist/ folder: walk up to the package.
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return null;
  }
}

function headCommit(gitDir: string): string | null {
  try {
    const head = readFileSync(join(gitDir, 'HEAD'), 'utf8').trim();
    if (/^[0-9a-f]{40}$/.test(head)) return head;
    const ref = /^ref: (.+)$/.exec(head)?.[1];
    if (ref === undefined) return null;
    const loose = join(gitDir, ref);
    if (existsSync(loose)) return readFileSync(loose, 'utf8').trim();
    // After `git gc` the branch lives in packed-refs: "<sha> <ref>" per line.
    for (const line of readFileSync(join(gitDir, 'packed-refs'), 'utf8').split('\n')) {
      const [sha, name] = line.split(' ');
      if (name === ref && sha !== undefined && /^[0-9a-f]{40}$/.test(sha)) return sha;
    }
    return null;
  } catch {
    return null;
  }
}
