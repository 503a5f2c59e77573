import { CubeError } from '../core/index.ts';

/** A flag value that must be a positive integer; the error names the flag. */
export function parsePositiveInt(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0)
      throw new CubeError('BAD_FLAG', `${flag} must be a positive integer, got "${value}"`, {
        where: { field: flag },
      });
    return n;
  };
}
