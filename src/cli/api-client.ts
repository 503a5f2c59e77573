import { CubeError, errorCodes, type CubeErrorCode } from '../core/index.ts';
import type { Credentials } from './credentials.ts';

/** A small client of the control plane's REST API for the CLI commands. */
export class ApiClient {
  readonly #credentials: Credentials;

  constructor(credentials: Credentials) {
    this.#credentials = credentials;
  }

  get server(): string {
    return this.#credentials.server;
  }

  /** A JSON request: the parsed body, or the control plane's error as a CubeError. */
  async request<T>(
    method: string,
    path: string,
    options: { body?: unknown; contentType?: string; signal?: AbortSignal } = {},
  ): Promise<T> {
    const { text } = await this.#send(method, path, options);
    return (text === '' ? null : JSON.parse(text)) as T;
  }

  /** A request whose answer is plain text (rank logs), with the response headers. */
  async requestText(
    method: string,
    path: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ text: string; headers: Headers }> {
    return this.#send(method, path, options);
  }

  async #send(
    method: string,
    path: string,
    options: { body?: unknown; contentType?: string; signal?: AbortSignal },
  ): Promise<{ text: string; headers: Headers }> {
    const url = `${this.#credentials.server}/api/v1${path}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${this.#credentials.token}`,
          ...(options.body === undefined
            ? {}
            : { 'content-type': options.contentType ?? 'application/json' }),
        },
        ...(options.body === undefined
          ? {}
          : {
              body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body),
            }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
    } catch (cause) {
      throw new CubeError(
        'INFEASIBLE',
        `cannot reach the control plane at ${this.#credentials.server}`,
        {
          cause,
          hint: 'is it running? `cube up` starts one on this machine',
        },
      );
    }
    const text = await response.text();
    if (!response.ok) {
      let json: unknown = null;
      try {
        json = text === '' ? null : JSON.parse(text);
      } catch {
        // not a Cube error body (a proxy's page, say): the status says enough
      }
      const error = (json as { error?: { code?: string; message?: string; where?: object } } | null)
        ?.error;
      const code =
        error?.code !== undefined && error.code in errorCodes
          ? (error.code as CubeErrorCode)
          : 'INTERNAL';
      if (response.status === 401)
        throw new CubeError(
          'BAD_FLAG',
          `the control plane refused the API token (401): ${error?.message ?? ''}`,
          {
            where: { field: '--token' },
            hint: 'log in again with `cube login --server URL --token TOKEN`',
          },
        );
      throw new CubeError(
        code,
        error?.message ?? `${method} ${path} failed with HTTP ${response.status}`,
        {
          where: error?.where ?? {},
        },
      );
    }
    return { text, headers: response.headers };
  }
}
