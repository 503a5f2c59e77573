import type { ErrorBody, StreamTicket } from './types.ts';

/** An error answer of the API (`{error: {code, message, where}}`), or no answer at all. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** The calls the views make; every one carries the API token. */
export interface ApiClient {
  readonly token: string;
  get<T>(path: string, options?: { signal?: AbortSignal }): Promise<T>;
  getText(
    path: string,
    options?: { signal?: AbortSignal },
  ): Promise<{ text: string; headers: Headers }>;
  post<T>(path: string, body: unknown, options?: { signal?: AbortSignal }): Promise<T>;
  /**
   * A URL of the event stream, good for one connection within 30 s. EventSource cannot send
   * headers, and the token must never be in a URL, so it carries a single-use ticket
   * (`POST /api/v1/stream-tickets`) instead.
   */
  streamUrl(
    params: Readonly<Record<string, string | number | undefined>>,
    options?: { signal?: AbortSignal },
  ): Promise<string>;
}

async function failure(response: Response): Promise<ApiError> {
  let code = response.status === 401 ? 'UNAUTHORIZED' : 'HTTP_' + String(response.status);
  let message = `${response.status} ${response.statusText}`;
  try {
    // A proxy's page or an empty body is not an ErrorBody: each part is checked as it is read.
    const body = (await response.json()) as Partial<ErrorBody> | null;
    if (typeof body?.error?.code === 'string') code = body.error.code;
    if (typeof body?.error?.message === 'string') message = body.error.message;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, code, message);
}

async function send(
  path: string,
  init: RequestInit,
  token: string,
  onUnauthorized: () => void,
): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(`/api/v1${path}`, {
      ...init,
      headers: { ...(init.headers ?? {}), authorization: `Bearer ${token}` },
    });
  } catch (error) {
    if (init.signal?.aborted === true) throw error;
    throw new ApiError(0, 'UNREACHABLE', 'the control plane does not answer');
  }
  if (!response.ok) {
    if (response.status === 401) onUnauthorized();
    throw await failure(response);
  }
  return response;
}

/** A client for `/api/v1` on this origin; `onUnauthorized` runs when the token is refused. */
export function createClient(token: string, onUnauthorized: () => void): ApiClient {
  return {
    token,
    async get<T>(path: string, options: { signal?: AbortSignal } = {}): Promise<T> {
      const r = await send(path, { signal: options.signal ?? null }, token, onUnauthorized);
      return (await r.json()) as T;
    },
    async getText(path: string, options: { signal?: AbortSignal } = {}) {
      const r = await send(path, { signal: options.signal ?? null }, token, onUnauthorized);
      return { text: await r.text(), headers: r.headers };
    },
    async post<T>(path: string, body: unknown, options: { signal?: AbortSignal } = {}) {
      const r = await send(
        path,
        {
          method: 'POST',
          body: JSON.stringify(body),
          headers: { 'content-type': 'application/json' },
          signal: options.signal ?? null,
        },
        token,
        onUnauthorized,
      );
      return (await r.json()) as T;
    },
    async streamUrl(params, options = {}) {
      const r = await send(
        '/stream-tickets',
        {
          method: 'POST',
          body: '{}',
          headers: { 'content-type': 'application/json' },
          signal: options.signal ?? null,
        },
        token,
        onUnauthorized,
      );
      const { ticket } = (await r.json()) as StreamTicket;
      const query = new URLSearchParams({ ticket });
      for (const [k, v] of Object.entries(params)) if (v !== undefined) query.set(k, String(v));
      return `/api/v1/stream?${query.toString()}`;
    },
  };
}

/** Checks a token against the API: resolves when it is accepted. */
export async function verifyToken(token: string): Promise<void> {
  await createClient(token, () => undefined).get('/nodes');
}
