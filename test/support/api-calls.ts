// Calls on a live control plane that several test files make: the user API with the admin
// token, the agents' API with a node's credential, and the CLI run in this process.
import assert from 'node:assert/strict';
import { main } from '../../src/cli/main.ts';

/** What a test needs of a running control plane (read when a call is made, not when bound). */
export interface LivePlane {
  readonly url: string;
  readonly tokens: { readonly apiToken: string };
}

/** `api(method, path, body)` on `/api/v1` with the admin token; asserts a 2xx answer. */
export function userApi(plane: () => LivePlane) {
  return async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
    const { url, tokens } = plane();
    const response = await fetch(`${url}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${tokens.apiToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
    return JSON.parse(text) as T;
  };
}

/** `agentCall(path, body, credential?)`: a POST to `/api/v1/agents/<path>`; asserts a 2xx answer. */
export function agentApi(plane: () => LivePlane) {
  return async function agentCall(path: string, body: unknown, token?: string): Promise<unknown> {
    const response = await fetch(`${plane().url}/api/v1/agents/${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      body: JSON.stringify(body),
    });
    assert.ok(response.ok, `${path}: HTTP ${response.status} ${await response.clone().text()}`);
    return response.json();
  };
}

/** Runs `cube <argv> --server URL --token T` in this process: its exit code and output. */
export function cliOn(plane: () => LivePlane) {
  return async function cube(
    ...argv: string[]
  ): Promise<{ code: number; out: string; err: string }> {
    const { url, tokens } = plane();
    let out = '';
    let err = '';
    const code = await main([...argv, '--server', url, '--token', tokens.apiToken], {
      out: (t) => (out += t.endsWith('\n') ? t : `${t}\n`),
      err: (t) => (err += t.endsWith('\n') ? t : `${t}\n`),
    });
    return { code, out, err };
  };
}

/**
 * Heartbeats for a node the test joined by hand, every 200 ms, adding the commands the replies
 * carry to `into` (the test plays the agent: it reads them and reports what it makes happen).
 */
export function heartbeatLoop(
  agentCall: ReturnType<typeof agentApi>,
  node: { readonly nodeId: string; readonly credential: string },
  into: unknown[],
): NodeJS.Timeout {
  return setInterval(() => {
    agentCall(`${node.nodeId}/heartbeat`, { ranks: [] }, node.credential)
      .then((reply) => {
        into.push(...(reply as { commands: unknown[] }).commands);
      })
      .catch(() => undefined);
  }, 200);
}
