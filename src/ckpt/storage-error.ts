import { CubeError } from '../core/index.ts';

const errnoText: Readonly<Record<string, { readonly what: string; readonly hint: string }>> = {
  ENOSPC: {
    what: 'no space left on device',
    hint: 'free space on that filesystem, lower the retention (CUBE_CKPT_KEEP) or point the level elsewhere',
  },
  EDQUOT: { what: 'disk quota exceeded', hint: 'raise the quota or free space' },
  EACCES: { what: 'permission denied', hint: 'make the directory writable by this user' },
  EPERM: { what: 'operation not permitted', hint: 'make the directory writable by this user' },
  EROFS: { what: 'read-only filesystem', hint: 'remount it read-write or choose another path' },
  ENOTDIR: {
    what: 'a component of the path is a file, not a directory',
    hint: 'remove or rename the file that stands where a directory is expected',
  },
  EISDIR: { what: 'a directory stands where a file is expected', hint: 'remove the directory' },
  ENOENT: { what: 'no such file or directory', hint: 'check the path' },
  EIO: { what: 'input/output error', hint: 'check the device and the kernel log' },
};

/** The errno code (`ENOSPC`, `EACCES`, ...) of a Node error, or of a CubeError's cause. */
export function errnoOf(error: unknown): string | undefined {
  if (error instanceof CubeError) return errnoOf(error.cause);
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = error.code;
    if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) return code;
  }
  return undefined;
}

/**
 * A run-time storage failure as a CubeError: the message names the operation, the path and the
 * errno; `cause` keeps the original error (so `errnoOf` finds the code). A missing file is
 * FILE_NOT_FOUND; everything else is STORAGE_FAILED (exit 1): the request was valid, the storage
 * could not carry it out.
 */
export function storageError(
  operation: string,
  path: string,
  cause: unknown,
  options: { readonly hint?: string } = {},
): CubeError {
  const errno = errnoOf(cause);
  const known = errno === undefined ? undefined : errnoText[errno];
  const detail =
    errno === undefined
      ? cause instanceof Error
        ? cause.message
        : String(cause)
      : `${errno} (${known?.what ?? (cause as Error).message})`;
  const hint = options.hint ?? known?.hint;
  return new CubeError(
    errno === 'ENOENT' ? 'FILE_NOT_FOUND' : 'STORAGE_FAILED',
    `cannot ${operation} ${path}: ${detail}`,
    {
      where: { file: path },
      cause,
      ...(hint === undefined ? {} : { hint }),
    },
  );
}
