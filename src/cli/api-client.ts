import { CubeError, errorCodes } from '../core/index.ts';
import type { ErrorBody } from '../control/server/api-schemas.ts';
import type { Credentials } from './credentials.ts';

// The API's answers, typed from the Zod schemas the control plane serializes them with (the
// same ones its OpenAPI document is made of): commands name these, not shapes of their own.
export type { ErrorBody } from '../control/server/api-schemas.ts';
export type { EventList, JobDetail, JobList, ProgressList } from '../control/server/job-routes.ts';
export type { NodeList } from '../control/server/node-routes.ts';
export type { StreamTicket } from '../control/server/event-routes.ts';
export type { CreatedToken, TokenInfo, TokenList } from '../control/server/token-routes.ts';
export type { PlanOptions, PlanResult } from '../control/server/plan-routes.ts';
export type { SimulationReport } from '../control/server/sim-routes.ts';

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
    const text = (await this.#send(method, path, options)).bytes.toString('utf8');
    return (text === '' ? null : JSON.parse(text)) as T;
  }

  /** A request whose answer is plain text (rank logs), with the response headers. */
  async requestText(
    method: string,
    path: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ text: string; headers: Headers }> {
    const { bytes, headers } = await this.#send(method, path, options);
    return { text: bytes.toString('utf8'), headers };
  }

  /**
   * A request whose answer is bytes (a range of a rank log that may start or end inside a
   * UTF-8 character), with the response headers.
   */
  async requestBytes(
    method: string,
    path: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ bytes: Buffer; headers: Headers }> {
    return this.#send(method, path, options);
  }

  async #send(
    method: string,
    path: string,
    options: { body?: unknown; contentType?: string; signal?: AbortSignal },
  ): Promise<{ bytes: Buffer; headers: Headers }> {
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
    const bytes = Buffer.from(await response.arrayBuffer());
    if (!response.ok) {
      const text = bytes.toString('utf8');
      let json: unknown = null;
      try {
        json = text === '' ? null : JSON.parse(text);
      } catch {
        // not a Cube error body (a proxy's page, say): the status says enough
      }
      // Not every failure is the API's (a proxy's page): each part is checked as it is read.
      const error = (json as Partial<ErrorBody> | null)?.error;
      const code = error?.code !== undefined && error.code in errorCodes ? error.code : 'INTERNAL';
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
    return { bytes, headers: response.headers };
  }
}
