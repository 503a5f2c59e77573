import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CubeError } from '../core/index.ts';

/**
 * Makes `dir` a private directory of this user: created 0700 when missing; an existing one must
 * be owned by this user and not writable by group or others (someone who can write into it can
 * swap the database or plant a token file), and is tightened to 0700.
 */
export function ensurePrivateDir(dir: string): void {
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  if (!st.isDirectory())
    throw new CubeError('INVALID_VALUE', `the data directory ${dir} is not a directory`, {
      where: { file: dir, field: '--data-dir' },
    });
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid)
    throw new CubeError(
      'INVALID_VALUE',
      `the data directory ${dir} belongs to user ${st.uid}, not to this user (${uid}); refusing to keep state and tokens in it`,
      { where: { file: dir, field: '--data-dir' }, hint: 'use a directory of your own' },
    );
  if ((st.mode & 0o022) !== 0)
    throw new CubeError(
      'INVALID_VALUE',
      `the data directory ${dir} is writable by ${(st.mode & 0o002) !== 0 ? 'everyone' : 'its group'} (mode ${(st.mode & 0o777).toString(8)}); refusing to keep state and tokens in it`,
      {
        where: { file: dir, field: '--data-dir' },
        hint: `check what is in it, then \`chmod 700 ${dir}\``,
      },
    );
  if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
}

/** Sets each existing file of `paths` to 0600. */
export function makePrivate(paths: readonly string[]): void {
  for (const path of paths) if (existsSync(path)) chmodSync(path, 0o600);
}

/**
 * Writes a secret file atomically at 0600: a temp file in the same directory, fsync, rename
 * over `path`, fsync of the directory. A crash leaves the old file or the new one, never a
 * torn one.
 */
export function writeSecretFileSync(path: string, text: string): void {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const fd = openSync(temp, 'wx', 0o600);
  try {
    const bytes = Buffer.from(text, 'utf8');
    let done = 0;
    while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(temp, path);
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
