import { CubeError, describeWhere } from '../core/index.ts';

/** Exit codes of the `cube` command: the one place a CubeError becomes one. */
export const exitCodes = { success: 0, failure: 1, badInput: 2 } as const;

export function exitCodeFor(error: unknown): number {
  // A job's own exit code, passed through by `cube submit --wait` (src/cli/job-ref.ts).
  if (error instanceof CubeError && 'exitCode' in error && typeof error.exitCode === 'number')
    return error.exitCode;
  if (error instanceof CubeError) return error.isBadInput ? exitCodes.badInput : exitCodes.failure;
  return exitCodes.failure;
}

/** The message printed on stderr for a failed command: what, where, what to do. */
export function formatError(error: unknown): string {
  if (!(error instanceof CubeError)) {
    const e = error instanceof Error ? error : new Error(String(error));
    return `cube: internal error: ${e.stack ?? e.message}`;
  }
  const lines = [`cube: error [${error.code}]: ${error.message}`];
  const where = describeWhere(error.where);
  if (where !== '') lines.push(`  where: ${where}`);
  const allowed = error.where.allowed;
  if (
    allowed !== undefined &&
    allowed.length > 0 &&
    allowed.length <= 20 &&
    error.code !== 'UNKNOWN_ID'
  )
    lines.push(`  allowed: ${allowed.join(', ')}`);
  if (error.hint !== undefined) lines.push(`  hint: ${error.hint}`);
  return lines.join('\n');
}
