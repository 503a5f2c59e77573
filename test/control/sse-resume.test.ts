// The live event stream resumes where a client left off (issue 14, "SSE resume with
// Last-Event-ID"): a real control plane, real HTTP, the durable log replayed after the id the
// client names, then live events, each once and in order.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane } from '../../src/control/control-plane.ts';

let dataDir: string;
let cp: ControlPlane;

interface StreamedEvent {
  readonly id: number;
  readonly kind: string;
  readonly jobId: string | undefined;
}

async function submit(name: string): Promise<string> {
  const response = await fetch(`${cp.url}/api/v1/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cp.tokens.apiToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      name,
      command: ['/usr/bin/true'],
      ranks: { nodes: 1, devicesPerNode: 1 },
      deviceType: 'cpu',
    }),
  });
  assert.equal(response.status, 201);
  return ((await response.json()) as { id: string }).id;
}

async function eventIds(): Promise<StreamedEvent[]> {
  const response = await fetch(`${cp.url}/api/v1/events`, {
    headers: { authorization: `Bearer ${cp.tokens.apiToken}` },
  });
  const body = (await response.json()) as {
    events: { id: number; kind: string; jobId?: string }[];
  };
  return body.events.map((e) => ({ id: e.id, kind: e.kind, jobId: e.jobId }));
}

/**
 * Opens the stream and collects events until `done` says so (or 10 s pass); `whileOpen` runs once
 * the stream has said it is connected, to make live events.
 */
async function follow(
  query: string,
  headers: Record<string, string>,
  done: (events: readonly StreamedEvent[]) => boolean,
  whileOpen: () => Promise<void> = async () => {},
): Promise<StreamedEvent[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 10_000);
  const events: StreamedEvent[] = [];
  try {
    const response = await fetch(`${cp.url}/api/v1/stream${query}`, {
      headers: { authorization: `Bearer ${cp.tokens.apiToken}`, ...headers },
      signal: abort.signal,
    });
    assert.equal(response.status, 200);
    assert.ok(response.body !== null);
    const decoder = new TextDecoder();
    let buffered = '';
    let started = false;
    for await (const chunk of response.body) {
      buffered += decoder.decode(chunk as Uint8Array, { stream: true });
      let end: number;
      while ((end = buffered.indexOf('\n\n')) >= 0) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (block.startsWith(': connected') && !started) {
          started = true;
          await whileOpen();
        }
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (data === undefined) continue;
        const e = JSON.parse(data) as { id: number; kind: string; jobId?: string };
        assert.equal(Number(/^id: (\d+)$/m.exec(block)?.[1]), e.id, 'the SSE id is the event id');
        events.push({ id: e.id, kind: e.kind, jobId: e.jobId });
      }
      if (done(events)) break;
    }
  } catch (error) {
    if (!abort.signal.aborted) throw error;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return events;
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'cube-sse-'));
  cp = await ControlPlane.start({ dataDir });
});

after(async () => {
  await cp.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test('a stream opened with Last-Event-ID replays every later event once, in order, then follows live ones', async () => {
  await submit('first');
  await submit('second');
  const logged = await eventIds();
  assert.ok(logged.length >= 2);
  const resumeAfter = logged[0]?.id ?? 0;
  const missed = logged.filter((e) => e.id > resumeAfter).map((e) => e.id);
  let liveJob = '';
  const got = await follow(
    '',
    { 'last-event-id': String(resumeAfter) },
    (events) => liveJob !== '' && events.some((e) => e.jobId === liveJob),
    async () => {
      liveJob = await submit('live');
    },
  );
  const ids = got.map((e) => e.id);
  assert.deepEqual(ids.slice(0, missed.length), missed, 'the missed events come first, in order');
  assert.ok(
    ids.every((id, i) => i === 0 || id > (ids[i - 1] ?? 0)),
    'no event twice, none out of order',
  );
  assert.ok(
    got.every((e) => e.id > resumeAfter),
    'nothing at or before the resume point',
  );
  assert.ok(got.some((e) => e.jobId === liveJob && e.kind === 'job-submitted'));
});

test('?after= resumes like Last-Event-ID, and ?job= keeps only that job’s events', async () => {
  const a = await submit('only-a');
  await submit('not-b');
  const logged = await eventIds();
  const before = (logged.find((e) => e.jobId === a)?.id ?? 1) - 1;
  const expected = logged.filter((e) => e.id > before && e.jobId === a).map((e) => e.id);
  assert.ok(expected.length >= 1);
  const got = await follow(`?after=${before}&job=${a}`, {}, (events) =>
    expected.every((id) => events.some((e) => e.id === id)),
  );
  assert.deepEqual(
    got.map((e) => e.id),
    expected,
  );
  assert.ok(got.every((e) => e.jobId === a));
});
