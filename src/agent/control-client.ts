import type { z } from 'zod';
import { apiPrefix } from './protocol.ts';

/** A reply of the control plane: the parsed body, or why there is none (`status` 0: unreachable). */
export type Reply<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly status: number; readonly message: string };

/** The base URL of the agent API for `--server` (`http://host:port`, with or without `/api/v1`). */
export function controlUrl(server: string): string {
  const base = server.replace(/\/+$/, '');
  return base.endsWith(apiPrefix) ? base : `${base}${apiPrefix}`;
}

/**
 * True for replies that mean the control plane does not (or no longer) know this node. A 403
 * is not one: the node is known, but may not report that (a job or rank not placed on it), so
 * a retry or a re-join would not change the answer.
 */
export function isAuthFailure(reply: Reply<unknown>): boolean {
  return !reply.ok && (reply.status === 401 || reply.status === 404);
}

/** True for failures worth retrying: unreachable, timeouts, overload, server errors, auth (after re-join). */
export function isRetryable(reply: Reply<unknown>): boolean {
  if (reply.ok) return false;
  const s = reply.status;
  return s === 0 || s === 408 || s === 429 || s >= 500 || isAuthFailure(reply);
}

/**
 * POSTs `body` as JSON and parses the reply with `schema`. Never throws: network errors,
 * timeouts, non-2xx statuses and malformed replies all come back as `{ok: false}`.
 */
export async function postJson<S extends z.ZodType>(
  url: string,
  body: unknown,
  schema: S,
  options: {
    readonly credential?: string | null;
    readonly signal?: AbortSignal;
    readonly timeoutMs?: number;
  } = {},
): Promise<Reply<z.output<S>>> {
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 10_000);
  const signal =
    options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout]);
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(options.credential == null ? {} : { authorization: `Bearer ${options.credential}` }),
      },
      body: JSON.stringify(body),
      signal,
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return { ok: false, status: 0, message: `${url}: ${cause ?? (error as Error).message}` };
  }
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    return {
      ok: false,
      status: 0,
      message: `${url}: reading the reply failed: ${(error as Error).message}`,
    };
  }
  if (!response.ok)
    return {
      ok: false,
      status: response.status,
      message: `${url}: ${response.status} ${text.slice(0, 300)}`,
    };
  let json: unknown = {};
  if (text.trim() !== '') {
    try {
      json = JSON.parse(text);
    } catch {
      return {
        ok: false,
        status: 0,
        message: `${url}: the reply is not JSON: ${text.slice(0, 100)}`,
      };
    }
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      ok: false,
      status: 0,
      message: `${url}: unexpected reply at ${issue?.path.join('.') ?? '?'}: ${issue?.message ?? 'invalid'}`,
    };
  }
  return { ok: true, value: parsed.data };
}
