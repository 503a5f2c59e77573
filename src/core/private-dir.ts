import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { CubeError } from './cube-error.ts';

/**
 * Makes `dir` a directory only this user can enter: created 0700 when missing; an existing one
 * must be this user's and writable by nobody else, and is then tightened to 0700. Someone who
 * can write into a directory holding state, tokens or shards can swap them, and a predictable
 * name under a world-writable parent (the default L1 root under /dev/shm) can be created first
 * by another user: such a directory is refused, never trusted. `what` names it in errors
 * ("the L1 directory ..."), `field` is the flag that chose it.
 */
export function ensurePrivateDir(dir: string, options: { what: string; field?: string }): void {
  const where = { file: dir, ...(options.field === undefined ? {} : { field: options.field }) };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
  if (!st.isDirectory())
    throw new CubeError('INVALID_VALUE', `the ${options.what} ${dir} is not a directory`, {
      where,
    });
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid)
    throw new CubeError(
      'INVALID_VALUE',
      `the ${options.what} ${dir} is owned by uid ${st.uid} (mode ${mode}), not by this user (uid ${uid}); refusing to use it`,
      {
        where,
        hint: 'someone else created it: check what is in it, or choose another directory',
      },
    );
  if ((st.mode & 0o022) !== 0)
    throw new CubeError(
      'INVALID_VALUE',
      `the ${options.what} ${dir} (owner uid ${st.uid}) has mode ${mode}: writable by ${(st.mode & 0o002) !== 0 ? 'everyone' : 'its group'}; refusing to use it`,
      { where, hint: `check what is in it, then \`chmod 700 ${dir}\`` },
    );
  if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
}
