import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { EventBodySchema, EventSchema, eventKinds } from '../../../src/control/model/index.ts';

describe('event schemas', () => {
  test('the event kinds are exactly those docs/control-protocol.md lists', () => {
    const doc = readFileSync(new URL('../../../docs/control-protocol.md', import.meta.url), 'utf8');
    const kindsLine = doc.slice(doc.indexOf('Kinds:'), doc.indexOf('Every state change'));
    // Kinds are words in backticks (`straggler` is one word); fault causes are listed there too.
    const causes = ['rank-exit', 'heartbeat-timeout', 'hang', 'probe-failed', 'injected'];
    const documented = [...kindsLine.matchAll(/`([a-z]+(?:-[a-z]+)*)`/g)]
      .map((m) => m[1])
      .filter((kind) => !causes.includes(kind ?? ''));
    assert.deepEqual([...eventKinds].sort(), [...new Set(documented)].sort());
  });

  test("each kind checks its own data and names the bad field's path", () => {
    const missing = EventBodySchema.safeParse({ kind: 'checkpoint-committed', data: { step: 3 } });
    assert.equal(missing.success, false);
    assert.deepEqual(missing.error?.issues[0]?.path, ['data', 'level']);
    const cause = EventBodySchema.safeParse({
      kind: 'fault-detected',
      data: { cause: 'gremlins' },
    });
    assert.deepEqual(cause.error?.issues[0]?.path, ['data', 'cause']);
    assert.equal(EventBodySchema.safeParse({ kind: 'job-exploded', data: {} }).success, false);
    assert.equal(
      EventBodySchema.safeParse({ kind: 'job-running', jobid: 'j-aaaaaaaa', data: {} }).success,
      false,
      'a misspelt envelope field is an error, not dropped',
    );
  });

  test('data may be left out where all its fields are optional, and extra data is kept', () => {
    assert.deepEqual(EventBodySchema.parse({ kind: 'job-running', jobId: 'j-aaaaaaaa' }), {
      kind: 'job-running',
      jobId: 'j-aaaaaaaa',
      data: {},
    });
    assert.deepEqual(
      EventBodySchema.parse({
        kind: 'rank-exited',
        rank: 2,
        data: { exitCode: 1, signal: null, note: 'x' },
      }).data,
      { exitCode: 1, signal: null, note: 'x' },
    );
  });

  test('a served event carries a positive id and an ISO time with milliseconds', () => {
    const event = { kind: 'node-up', nodeId: 'n-aaaaaaaa', data: {} };
    assert.equal(
      EventSchema.safeParse({ ...event, id: 1, at: '2025-01-02T03:04:05.678Z' }).success,
      true,
    );
    assert.equal(
      EventSchema.safeParse({ ...event, id: 0, at: '2025-01-02T03:04:05.678Z' }).success,
      false,
    );
    assert.equal(EventSchema.safeParse({ ...event, id: 1, at: 'yesterday' }).success, false);
  });
});
