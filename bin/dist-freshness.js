// Whether dist/ (scripts/build.mjs) was built from the sources now in src/. Shared by
// bin/cube.js, which runs dist/ only when it is, and scripts/build.mjs (`--check`, setup).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The build's record of its sources, written last into the build. */
export const stampFile = '.build-stamp.json';

/** Every file under `dir` that the build compiles or copies (tests excepted). */
export function sourceFiles(dir, found = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) sourceFiles(path, found);
    else if (!entry.name.endsWith('.test.ts')) found.push(path);
  }
  return found;
}

/**
 * Why `<root>/dist` cannot run the sources in `<root>/src`, or null when it can: a source
 * modified after the newest one the build saw, or another number of sources (one added or
 * removed with an old modification time). It stats every source (about 250: a few ms).
 */
export function staleness(root) {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(join(root, 'dist', stampFile), 'utf8'));
  } catch {
    return 'there is no build in dist/';
  }
  let files;
  try {
    files = sourceFiles(join(root, 'src'));
  } catch (error) {
    // An installation that ships dist/ without the sources: nothing for it to be stale against.
    if (error.code === 'ENOENT') return null;
    throw error;
  }
  for (const file of files)
    if (statSync(file).mtimeMs > stamp.newestSourceMtimeMs)
      return `${file.slice(root.length)} changed after the build in dist/`;
  if (files.length !== stamp.sourceFiles)
    return `src/ has ${files.length} files, the build in dist/ was made from ${stamp.sourceFiles}`;
  return null;
}
