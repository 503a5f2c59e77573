/**
 * The one error family of Cube. Every failure that reaches a user carries a stable `code`,
 * a structured `where` (file, path inside it, field, allowed values, rank, node) and an
 * optional hint; the CLI and the HTTP API each map it to an exit code or status in one place.
 */

/** Stable error codes with what they mean to a caller. */
export const errorCodes = {
  BAD_FLAG: {
    badInput: true,
    httpStatus: 400,
    summary: 'a command-line flag is missing or invalid',
  },
  UNKNOWN_ID: { badInput: true, httpStatus: 404, summary: 'an id names nothing Cube knows' },
  FILE_NOT_FOUND: {
    badInput: true,
    httpStatus: 400,
    summary: 'a file given as input does not exist',
  },
  FILE_UNREADABLE: { badInput: true, httpStatus: 400, summary: 'a file could not be parsed' },
  INVALID_FILE: { badInput: true, httpStatus: 400, summary: 'a file does not match its schema' },
  INVALID_VALUE: {
    badInput: true,
    httpStatus: 400,
    summary: 'a value is out of its allowed range',
  },
  UNAUTHORIZED: {
    badInput: true,
    httpStatus: 401,
    summary: 'a credential is missing, unknown or revoked',
  },
  FORBIDDEN: {
    badInput: true,
    httpStatus: 403,
    summary: 'the credential is valid but may not do this',
  },
  INFEASIBLE: {
    badInput: false,
    httpStatus: 422,
    summary: 'the request is valid but cannot be met',
  },
  STORAGE_FAILED: {
    badInput: false,
    httpStatus: 507,
    summary: 'a storage read or write failed (no space, permissions, I/O)',
  },
  CORRUPT_DATA: {
    badInput: false,
    httpStatus: 422,
    summary: 'stored data does not match its checksum or size',
  },
  INTERNAL: { badInput: false, httpStatus: 500, summary: 'a bug in Cube' },
} as const;

export type CubeErrorCode = keyof typeof errorCodes;

/** Where an error happened, as precisely as is known. */
export interface ErrorWhere {
  /** The input file. */
  readonly file?: string;
  /** The path inside the file, e.g. `servers[2].accelerator`. */
  readonly path?: string;
  /** The flag or field name, e.g. `--gpus`. */
  readonly field?: string;
  /** The values that would have been accepted. */
  readonly allowed?: readonly string[];
  readonly rank?: number;
  readonly node?: string;
}

export interface CubeErrorOptions {
  readonly where?: ErrorWhere;
  /** What the user can do about it. */
  readonly hint?: string;
  readonly cause?: unknown;
}

export class CubeError extends Error {
  readonly code: CubeErrorCode;
  readonly where: ErrorWhere;
  readonly hint: string | undefined;

  constructor(code: CubeErrorCode, message: string, options: CubeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CubeError';
    this.code = code;
    this.where = options.where ?? {};
    this.hint = options.hint;
  }

  /** True when the caller gave bad input (exit code 2, HTTP 4xx). */
  get isBadInput(): boolean {
    return errorCodes[this.code].badInput;
  }

  get httpStatus(): number {
    return errorCodes[this.code].httpStatus;
  }

  /** A JSON-friendly description, as the API and `--json` outputs report it. */
  toJSON(): { code: CubeErrorCode; message: string; where: ErrorWhere; hint?: string } {
    return {
      code: this.code,
      message: this.message,
      where: this.where,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
    };
  }
}

/** Describes `where` in one line: `models/x.json at moe.num_experts (field --model)`. */
export function describeWhere(where: ErrorWhere): string {
  const parts: string[] = [];
  if (where.file !== undefined) parts.push(where.file);
  if (where.path !== undefined && where.path !== '') parts.push(`at ${where.path}`);
  if (where.field !== undefined) parts.push(`(${where.field})`);
  if (where.node !== undefined) parts.push(`on node ${where.node}`);
  if (where.rank !== undefined) parts.push(`rank ${where.rank}`);
  return parts.join(' ');
}
