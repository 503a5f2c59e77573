import { chmod, mkdir, stat } from 'node:fs/promises';
import { CubeError } from '../core/index.ts';

/**
 * Makes `dir` a directory only this user can enter: created 0700 when missing; an existing one
 * must be this user's and writable by nobody else, and is then tightened to 0700. The default
 * L1 root is a predictable name under the world-writable /dev/shm: another user could create it
 * first and read or swap every shard written into it, so it is refused, never trusted.
 */
export async function ensurePrivateDir(dir: string, what: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await stat(dir);
  const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
  if (!st.isDirectory())
    throw new CubeError('INVALID_VALUE', `the ${what} ${dir} is not a directory`, {
      where: { file: dir },
    });
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid)
    throw new CubeError(
      'INVALID_VALUE',
      `the ${what} ${dir} is owned by uid ${st.uid} (mode ${mode}), not by this agent's user (uid ${uid}); refusing to use it`,
      {
        where: { file: dir },
        hint: `someone else created it: check what is in it, or choose another directory`,
      },
    );
  if ((st.mode & 0o022) !== 0)
    throw new CubeError(
      'INVALID_VALUE',
      `the ${what} ${dir} (owner uid ${st.uid}) has mode ${mode}: writable by ${(st.mode & 0o002) !== 0 ? 'everyone' : 'its group'}; refusing to use it`,
      { where: { file: dir }, hint: `check what is in it, then \`chmod 700 ${dir}\`` },
    );
  if ((st.mode & 0o777) !== 0o700) await chmod(dir, 0o700);
}
