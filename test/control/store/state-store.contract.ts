/**
 * The behaviour every StateStore must have. Each implementation's test file calls
 * `stateStoreContract` with a factory; today SQLite (on a file and in memory) runs it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { CubeError } from '../../../src/core/index.ts';
import {
  validateJobSpec,
  type Event,
  type JobSpec,
  type NewEvent,
} from '../../../src/control/model/index.ts';
import type { NodeJoin, StateStore } from '../../../src/control/store/index.ts';

/** One store under test, on a new, empty database. */
export interface StoreUnderTest {
  readonly store: StateStore;
  /** Opens the same database again once `store` is closed; absent where it dies with its store. */
  readonly reopen?: () => Promise<StateStore>;
  /** Every row of a table, read beneath the interface; absent where that is not possible. */
  readonly rawRows?: (table: string) => Promise<readonly Record<string, unknown>[]>;
}

/** Opens a store on a new, empty database; `now` is its clock. */
export type OpenStoreUnderTest = (options?: { now?: () => number }) => Promise<StoreUnderTest>;

/** A small valid spec; `name` and the world size vary per test. */
export function sampleSpec(name = 'gpt-small', nodes = 2): JobSpec {
  return validateJobSpec({
    name,
    command: ['.venv/bin/python', 'examples/gpt/train.py'],
    ranks: { nodes, devicesPerNode: 2 },
    deviceType: 'cpu',
  });
}

/** What an agent named `name` reports when it joins. */
export function sampleJoin(name: string, extra: Partial<NodeJoin> = {}): NodeJoin {
  return {
    name,
    labels: { server: `srv-${name}`, superNode: 'sn-1', pod: 'pod-1', rack: 'r7' },
    devices: [
      { index: 0, kind: 'cpu', model: 'x86-64', memoryBytes: 2 ** 30, health: 'ok' },
      { index: 1, kind: 'cpu', model: 'x86-64', memoryBytes: 2 ** 30, health: 'ok' },
    ],
    hostMemoryBytes: 16 * 2 ** 30,
    host: '127.0.0.1',
    ckptPeerPort: 7100,
    ...extra,
  };
}

function isCubeError(code: CubeError['code']): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof CubeError, `expected CubeError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

function kindsOf(events: readonly Event[]): string[] {
  return events.map((e) => e.kind);
}

export function stateStoreContract(name: string, open: OpenStoreUnderTest): void {
  /** Runs `body` with a fresh store and closes it afterwards, whatever happens. */
  async function withStore(
    body: (s: StoreUnderTest) => Promise<void>,
    options?: { now?: () => number },
  ): Promise<void> {
    const under = await open(options);
    try {
      await body(under);
    } finally {
      await under.store.close();
    }
  }

  describe(`StateStore contract: ${name}`, () => {
    test('an API token is returned once and only its SHA-256 hash is stored', () =>
      withStore(async ({ store, rawRows }) => {
        const { id, token } = await store.createApiToken('ci');
        assert.match(token, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
        assert.equal(await store.verifyApiToken(token), true);
        const second = await store.createApiToken('ci');
        assert.notEqual(second.token, token);
        assert.notEqual(second.id, id);
        if (rawRows !== undefined) {
          const rows = await rawRows('tokens');
          assert.equal(rows.length, 2);
          for (const row of rows) {
            for (const value of Object.values(row)) {
              assert.ok(!String(value).includes(token), 'no column holds the token');
              assert.ok(!String(value).includes(second.token), 'no column holds the token');
            }
          }
          const hash = createHash('sha256').update(token).digest('hex');
          assert.ok(rows.some((row) => Object.values(row).includes(hash)));
        }
      }));

    test('wrong, empty and cross-kind tokens are rejected', () =>
      withStore(async ({ store }) => {
        const api = await store.createApiToken('user');
        const join = await store.createJoinToken('agents');
        assert.equal(await store.verifyJoinToken(join.token), true);
        assert.equal(await store.verifyApiToken(join.token), false);
        assert.equal(await store.verifyJoinToken(api.token), false);
        assert.equal(await store.verifyApiToken(''), false);
        assert.equal(await store.verifyApiToken(`${api.token}x`), false);
        assert.equal(await store.verifyApiToken(api.token.slice(0, -1)), false);
      }));

    test('a join assigns a node id and a credential that authenticates the node, and appends node-joined', () =>
      withStore(async ({ store, rawRows }) => {
        const { node, credential, rejoined } = await store.joinNode(
          sampleJoin('node-a', { now: 1_000 }),
        );
        assert.equal(rejoined, false);
        assert.match(node.id, /^n-[a-z2-7]{8}$/);
        assert.equal(node.state, 'ready');
        assert.equal(node.role, 'worker');
        assert.deepEqual(node.labels, {
          server: 'srv-node-a',
          superNode: 'sn-1',
          pod: 'pod-1',
          rack: 'r7',
        });
        assert.equal(node.devices.length, 2);
        assert.equal(node.hostMemoryBytes, 16 * 2 ** 30);
        assert.equal(node.host, '127.0.0.1');
        assert.equal(node.ckptPeerPort, 7100);
        assert.equal(node.joinedAt, 1_000);
        assert.equal(node.lastHeartbeatAt, 1_000);
        assert.deepEqual(await store.authenticateNode(node.id, credential), node);
        assert.deepEqual(await store.getNode(node.id), node);
        const events = await store.listEvents({ nodeId: node.id });
        assert.deepEqual(kindsOf(events), ['node-joined']);
        assert.deepEqual(events[0]?.data, { name: 'node-a', rejoined: false });
        if (rawRows !== undefined) {
          const text = JSON.stringify(await rawRows('nodes'));
          assert.ok(!text.includes(credential), 'the credential itself is not stored');
        }
      }));

    test('a rejoin with the same name and the current credential keeps the node id and takes the new report', () =>
      withStore(async ({ store }) => {
        const first = await store.joinNode(sampleJoin('node-a'));
        await store.updateNode(first.node.id, { state: 'down' });
        const again = await store.joinNode(
          sampleJoin('node-a', { credential: first.credential, hostMemoryBytes: 42, now: 5_000 }),
        );
        assert.equal(again.rejoined, true);
        assert.equal(again.node.id, first.node.id);
        assert.equal(again.credential, first.credential);
        assert.equal(again.node.state, 'ready', 'a down node is ready again');
        assert.equal(again.node.hostMemoryBytes, 42);
        assert.equal(again.node.lastHeartbeatAt, 5_000);
        assert.equal((await store.listNodes()).length, 1);
        assert.ok(await store.authenticateNode(first.node.id, first.credential));

        await store.updateNode(first.node.id, { state: 'cordoned' });
        const third = await store.joinNode(sampleJoin('node-a', { credential: first.credential }));
        assert.equal(third.node.state, 'cordoned', 'a cordon outlives an agent restart');
        const joined = await store.listEvents({ nodeId: first.node.id, kinds: ['node-joined'] });
        assert.deepEqual(
          joined.map((e) => e.data),
          [
            { name: 'node-a', rejoined: false },
            { name: 'node-a', rejoined: true },
            { name: 'node-a', rejoined: true },
          ],
        );
      }));

    test("a join under a live node's name without its credential is refused, and a down node's name is taken over", () =>
      withStore(async ({ store }) => {
        const first = await store.joinNode(sampleJoin('node-a'));
        await assert.rejects(store.joinNode(sampleJoin('node-a')), isCubeError('INFEASIBLE'));
        await assert.rejects(
          store.joinNode(sampleJoin('node-a', { credential: 'not-the-credential' })),
          isCubeError('INFEASIBLE'),
        );
        await store.updateNode(first.node.id, { state: 'down' });
        const second = await store.joinNode(sampleJoin('node-a'));
        assert.equal(second.rejoined, false);
        assert.notEqual(second.node.id, first.node.id);
        assert.equal((await store.getNode(first.node.id))?.state, 'left');
        assert.equal(await store.authenticateNode(first.node.id, first.credential), null);
        assert.deepEqual(
          (await store.listNodes({ states: ['ready'] })).map((n) => n.id),
          [second.node.id],
        );
        const [joined] = await store.listEvents({ nodeId: second.node.id });
        assert.equal(joined?.kind, 'node-joined');
        assert.equal((joined?.data as { replacesNodeId?: string }).replacesNodeId, first.node.id);
      }));

    test('authenticateNode rejects a wrong credential and an unknown node', () =>
      withStore(async ({ store }) => {
        const { node, credential } = await store.joinNode(sampleJoin('node-a'));
        const other = await store.joinNode(sampleJoin('node-b'));
        assert.equal(await store.authenticateNode(node.id, other.credential), null);
        assert.equal(await store.authenticateNode(node.id, ''), null);
        assert.equal(await store.authenticateNode('n-unknown1', credential), null);
        assert.equal(await store.getNode('n-unknown1'), null);
      }));

    test('updateNode applies a patch with its events and checks the expected state', () =>
      withStore(async ({ store }) => {
        const { node } = await store.joinNode(sampleJoin('node-a'));
        const health = { probes: [{ name: 'disk', ok: true }], freeBytes: { l1: 10, l3: 20 } };
        const updated = await store.updateNode(
          node.id,
          { state: 'cordoned', lastHeartbeatAt: 9_000, health, expectState: 'ready' },
          [{ kind: 'node-cordoned', nodeId: node.id, data: { by: 'user' } }],
        );
        assert.equal(updated.state, 'cordoned');
        assert.equal(updated.lastHeartbeatAt, 9_000);
        assert.deepEqual(updated.health, health);
        assert.deepEqual(updated.labels, node.labels, 'fields not in the patch stay');
        assert.deepEqual(kindsOf(await store.listEvents({ nodeId: node.id })), [
          'node-joined',
          'node-cordoned',
        ]);
        await assert.rejects(
          store.updateNode(node.id, { state: 'ready', expectState: ['ready', 'down'] }),
          isCubeError('INFEASIBLE'),
        );
        assert.equal((await store.getNode(node.id))?.state, 'cordoned');
        await assert.rejects(
          store.updateNode('n-missing1', { state: 'ready' }),
          isCubeError('UNKNOWN_ID'),
        );
      }));

    test("recordHeartbeats stores many nodes' heartbeat times and health at once, without events, all or none", async (t) => {
      const under = await open();
      const { store } = under;
      let closed = false;
      try {
        const a = await store.joinNode(sampleJoin('node-a'));
        const b = await store.joinNode(sampleJoin('node-b'));
        const eventsBefore = await store.lastEventId();
        const health = { probes: [{ name: 'devices', ok: true, message: '2 healthy' }] };
        await store.recordHeartbeats([
          { nodeId: a.node.id, at: 7_000, health },
          { nodeId: b.node.id, at: 7_001, health: null },
        ]);
        assert.equal((await store.getNode(a.node.id))?.lastHeartbeatAt, 7_000);
        assert.deepEqual((await store.getNode(a.node.id))?.health, health);
        assert.deepEqual(
          (await store.listNodes()).map((n) => n.lastHeartbeatAt),
          [7_000, 7_001],
        );
        assert.equal(await store.lastEventId(), eventsBefore, 'no events');
        await assert.rejects(
          store.recordHeartbeats([
            { nodeId: a.node.id, at: 8_000, health: null },
            { nodeId: 'n-missing1', at: 8_000, health: null },
          ]),
          isCubeError('UNKNOWN_ID'),
        );
        assert.equal((await store.getNode(a.node.id))?.lastHeartbeatAt, 7_000, 'nothing changed');
        const reopen = under.reopen;
        if (reopen === undefined) {
          t.diagnostic('this database does not outlive its store');
          return;
        }
        await store.close();
        closed = true;
        const again = await reopen();
        try {
          assert.equal((await again.getNode(a.node.id))?.lastHeartbeatAt, 7_000);
          assert.deepEqual(
            await again.authenticateNode(b.node.id, b.credential),
            await again.getNode(b.node.id),
          );
        } finally {
          await again.close();
        }
      } finally {
        if (!closed) await store.close();
      }
    });

    test('createJob stores a queued job with a j- id and its spec, and appends job-submitted', () =>
      withStore(async ({ store }) => {
        const spec = sampleSpec();
        const job = await store.createJob(spec, { now: 1_700_000_000_123 });
        assert.match(job.id, /^j-[a-z2-7]{8}$/);
        assert.equal(job.state, 'queued');
        assert.equal(job.attempt, 0);
        assert.equal(job.restarts, 0);
        assert.equal(job.placement, null);
        assert.deepEqual(job.placementExplanation, []);
        assert.equal(job.reason, null);
        assert.equal(job.createdAt, 1_700_000_000_123);
        assert.equal(job.startedAt, null);
        assert.equal(job.endedAt, null);
        assert.deepEqual(job.spec, spec);
        assert.deepEqual(await store.getJob(job.id), job);
        const events = await store.listEvents({ jobId: job.id });
        assert.deepEqual(kindsOf(events), ['job-submitted']);
        assert.equal(events[0]?.at, '2023-11-14T22:13:20.123Z');
        assert.deepEqual(events[0]?.data, { name: 'gpt-small', priority: 0, worldSize: 4 });
        await assert.rejects(
          store.createJob({ ...spec, name: 'Not Valid' }),
          isCubeError('INVALID_VALUE'),
        );
      }));

    test('listJobs keeps submission order and filters by state', () =>
      withStore(async ({ store }) => {
        const a = await store.createJob(sampleSpec('a'));
        const b = await store.createJob(sampleSpec('b'));
        const c = await store.createJob(sampleSpec('c'));
        await store.updateJob(b.id, { state: 'running' });
        assert.deepEqual(
          (await store.listJobs()).map((j) => j.id),
          [a.id, b.id, c.id],
        );
        assert.deepEqual(
          (await store.listJobs({ states: ['queued'] })).map((j) => j.id),
          [a.id, c.id],
        );
        assert.deepEqual(
          (await store.listJobs({ states: ['running', 'recovering'] })).map((j) => j.id),
          [b.id],
        );
        assert.deepEqual(await store.listJobs({ states: [] }), []);
      }));

    test('updateJob applies the patch and appends its events in one transaction', () =>
      withStore(async ({ store }) => {
        const job = await store.createJob(sampleSpec());
        const { node } = await store.joinNode(sampleJoin('node-a'));
        const placement = [0, 1, 2, 3].map((rank) => ({
          rank,
          nodeId: node.id,
          localRank: rank % 2,
        }));
        const updated = await store.updateJob(
          job.id,
          {
            state: 'scheduled',
            placement,
            placementExplanation: ['one node fits the gang'],
            expectState: 'queued',
          },
          [{ kind: 'job-scheduled', jobId: job.id, attempt: 0, data: { placement } }],
        );
        assert.equal(updated.state, 'scheduled');
        assert.deepEqual(updated.placement, placement);
        assert.deepEqual(updated.placementExplanation, ['one node fits the gang']);
        const ended = await store.updateJob(
          job.id,
          { state: 'failed', reason: 'rank 2 exited with 1', restarts: 3, endedAt: 77 },
          [{ kind: 'job-failed', jobId: job.id, data: { reason: 'rank 2 exited with 1' } }],
        );
        assert.equal(ended.reason, 'rank 2 exited with 1');
        assert.equal(ended.restarts, 3);
        assert.equal(ended.endedAt, 77);
        assert.deepEqual(ended.placement, placement, 'fields not in the patch stay');
        assert.deepEqual(kindsOf(await store.listEvents({ jobId: job.id })), [
          'job-submitted',
          'job-scheduled',
          'job-failed',
        ]);
      }));

    test('an event that fails validation rolls back the job change and appends nothing', () =>
      withStore(async ({ store }) => {
        const job = await store.createJob(sampleSpec());
        const before = await store.lastEventId();
        const bad = { kind: 'checkpoint-committed', jobId: job.id, data: { step: 10 } } as const;
        await assert.rejects(
          store.updateJob(job.id, { state: 'running', attempt: 1 }, [
            { kind: 'job-running', jobId: job.id },
            bad as unknown as NewEvent,
          ]),
          (e: unknown) => {
            assert.ok(e instanceof CubeError);
            assert.equal(e.code, 'INVALID_VALUE');
            assert.equal(e.where.path, 'data.level');
            return true;
          },
        );
        const after = await store.getJob(job.id);
        assert.equal(after?.state, 'queued');
        assert.equal(after?.attempt, 0);
        assert.equal(await store.lastEventId(), before);
        await assert.rejects(
          store.updateJob(job.id, { state: 'running' }, [
            { kind: 'no-such-kind', jobId: job.id } as unknown as NewEvent,
          ]),
          isCubeError('INVALID_VALUE'),
        );
        await assert.rejects(
          store.updateJob(job.id, { state: 'sideways' as never }),
          isCubeError('INVALID_VALUE'),
        );
        assert.equal((await store.getJob(job.id))?.state, 'queued');
      }));

    test('an expectState mismatch fails with INFEASIBLE and changes nothing', () =>
      withStore(async ({ store }) => {
        const job = await store.createJob(sampleSpec());
        await store.updateJob(job.id, { state: 'cancelled' });
        await assert.rejects(
          store.updateJob(job.id, { state: 'scheduled', expectState: ['queued'] }, [
            { kind: 'job-scheduled', jobId: job.id },
          ]),
          (e: unknown) => {
            assert.ok(e instanceof CubeError);
            assert.equal(e.code, 'INFEASIBLE');
            assert.match(e.message, /cancelled/);
            return true;
          },
        );
        assert.equal((await store.getJob(job.id))?.state, 'cancelled');
        assert.deepEqual(kindsOf(await store.listEvents({ jobId: job.id })), ['job-submitted']);
      }));

    test('unknown ids fail with UNKNOWN_ID, and get returns null', () =>
      withStore(async ({ store }) => {
        const job = await store.createJob(sampleSpec());
        assert.equal(await store.getJob('j-nothere2'), null);
        const near = job.id.slice(0, -1) + (job.id.endsWith('a') ? 'b' : 'a');
        await assert.rejects(store.updateJob(near, { state: 'running' }), (e: unknown) => {
          assert.ok(e instanceof CubeError);
          assert.equal(e.code, 'UNKNOWN_ID');
          assert.match(e.hint ?? '', new RegExp(job.id), 'suggests the near id');
          return true;
        });
        await assert.rejects(
          store.appendEvents([{ kind: 'node-up', nodeId: 'n-nothere2' }]),
          isCubeError('UNKNOWN_ID'),
        );
        await assert.rejects(
          store.recordCheckpoint({ jobId: 'j-nothere2', step: 1, level: 'L1', at: 1 }),
          isCubeError('UNKNOWN_ID'),
        );
      }));

    test('event ids increase, and each event carries an ISO time in milliseconds', () => {
      let clock = Date.UTC(2025, 0, 2, 3, 4, 5, 678);
      return withStore(
        async ({ store }) => {
          const job = await store.createJob(sampleSpec());
          const written = await store.appendEvents([
            { kind: 'job-waiting', jobId: job.id, data: { reason: 'no nodes' } },
            { kind: 'job-waiting', jobId: job.id, data: { reason: 'still none' }, atMs: 5 },
          ]);
          clock += 1;
          const [later] = await store.appendEvents([{ kind: 'job-running', jobId: job.id }]);
          const ids = [...written, later].map((e) => e?.id ?? 0);
          assert.ok(
            ids.every((id, i) => i === 0 || id > (ids[i - 1] ?? 0)),
            `${ids.join(',')}`,
          );
          assert.equal(written[0]?.at, '2025-01-02T03:04:05.678Z');
          assert.equal(written[1]?.at, '1970-01-01T00:00:00.005Z', 'atMs wins over the clock');
          assert.equal(later?.at, '2025-01-02T03:04:05.679Z');
          assert.deepEqual(later?.data, {}, 'optional data defaults to {}');
          assert.equal(await store.lastEventId(), later?.id);
          assert.deepEqual(await store.appendEvents([]), []);
        },
        { now: () => clock },
      );
    });

    test('listEvents filters by job, node and kind, and pages with afterId and limit', () =>
      withStore(async ({ store }) => {
        const a = await store.createJob(sampleSpec('a'));
        const b = await store.createJob(sampleSpec('b'));
        const { node } = await store.joinNode(sampleJoin('node-a'));
        await store.appendEvents([
          { kind: 'rank-launched', jobId: a.id, nodeId: node.id, rank: 0, attempt: 0 },
          { kind: 'rank-launched', jobId: a.id, nodeId: node.id, rank: 1, attempt: 0 },
          { kind: 'rank-running', jobId: b.id, rank: 0, attempt: 0 },
          { kind: 'fault-detected', jobId: a.id, nodeId: node.id, data: { cause: 'injected' } },
        ]);
        const all = await store.listEvents({});
        assert.equal(all.length, 7);
        assert.deepEqual(kindsOf(await store.listEvents({ jobId: a.id })), [
          'job-submitted',
          'rank-launched',
          'rank-launched',
          'fault-detected',
        ]);
        assert.deepEqual(kindsOf(await store.listEvents({ nodeId: node.id })), [
          'node-joined',
          'rank-launched',
          'rank-launched',
          'fault-detected',
        ]);
        const launched = await store.listEvents({ jobId: a.id, kinds: ['rank-launched'] });
        assert.deepEqual(
          launched.map((e) => [e.rank, e.attempt, e.nodeId]),
          [
            [0, 0, node.id],
            [1, 0, node.id],
          ],
        );
        assert.deepEqual(
          kindsOf(await store.listEvents({ kinds: ['job-submitted', 'node-joined'] })),
          ['job-submitted', 'job-submitted', 'node-joined'],
        );
        assert.deepEqual(await store.listEvents({ kinds: [] }), []);

        const pages: Event[][] = [];
        let afterId = 0;
        for (;;) {
          const page = await store.listEvents({ afterId, limit: 3 });
          if (page.length === 0) break;
          pages.push(page);
          afterId = page.at(-1)?.id ?? afterId;
        }
        assert.deepEqual(
          pages.map((p) => p.length),
          [3, 3, 1],
        );
        assert.deepEqual(pages.flat(), all);
        const firstB = all.find((e) => e.jobId === b.id);
        assert.deepEqual(
          kindsOf(await store.listEvents({ jobId: b.id, afterId: firstB?.id ?? 0 })),
          ['rank-running'],
        );
        const withoutJob = all.find((e) => e.kind === 'node-joined');
        assert.ok(withoutJob !== undefined && !('jobId' in withoutJob), 'absent ids are left out');
      }));

    test('appendEvents is all or none: an event naming an unknown job appends nothing', () =>
      withStore(async ({ store }) => {
        const job = await store.createJob(sampleSpec());
        const before = await store.lastEventId();
        await assert.rejects(
          store.appendEvents([
            { kind: 'job-running', jobId: job.id },
            { kind: 'job-running', jobId: 'j-nothere2' },
          ]),
          isCubeError('UNKNOWN_ID'),
        );
        assert.equal(await store.lastEventId(), before);
      }));

    test('subscribers see events once committed, and never those rolled back', () =>
      withStore(async ({ store }) => {
        const seen: Event[][] = [];
        const unsubscribe = store.subscribe((events) => seen.push([...events]));
        const job = await store.createJob(sampleSpec());
        assert.deepEqual(
          seen.map((batch) => kindsOf(batch)),
          [['job-submitted']],
        );
        await store
          .updateJob(job.id, { state: 'running', expectState: 'scheduled' }, [
            { kind: 'job-running', jobId: job.id },
          ])
          .catch(() => undefined);
        assert.equal(seen.length, 1, 'a rolled-back write tells nobody');
        const [written] = await store.appendEvents([{ kind: 'job-running', jobId: job.id }]);
        assert.deepEqual(seen[1], [written]);
        unsubscribe();
        await store.appendEvents([{ kind: 'job-succeeded', jobId: job.id }]);
        assert.equal(seen.length, 2);
      }));

    test('progress samples come back per job, filtered by rank, attempt and step, and limited', () =>
      withStore(async ({ store }) => {
        const job = await store.createJob(sampleSpec());
        const other = await store.createJob(sampleSpec('other'));
        const samples = [];
        for (let step = 1; step <= 5; step++) {
          for (const rank of [0, 1]) {
            samples.push({
              jobId: job.id,
              attempt: 0,
              rank,
              step,
              loss: 10 / step,
              tokensPerS: 1000 + rank,
              at: step * 100,
            });
          }
        }
        samples.push({ ...samples[0]!, attempt: 1, step: 6, loss: null, tokensPerS: null });
        await store.recordProgress(samples);
        await store.recordProgress([{ ...samples[0]!, jobId: other.id }]);
        const all = await store.listProgress(job.id);
        assert.deepEqual(all, samples, 'in the order recorded');
        assert.deepEqual(
          (await store.listProgress(job.id, { rank: 1 })).map((s) => s.step),
          [1, 2, 3, 4, 5],
        );
        assert.deepEqual(
          (await store.listProgress(job.id, { rank: 0, afterStep: 3 })).map((s) => s.step),
          [4, 5, 6],
        );
        assert.deepEqual(
          (await store.listProgress(job.id, { attempt: 1 })).map((s) => s.loss),
          [null],
        );
        assert.equal((await store.listProgress(job.id, { limit: 4 })).length, 4);
        await assert.rejects(
          store.recordProgress([{ ...samples[0]!, step: -1 }]),
          isCubeError('INVALID_VALUE'),
        );
        await assert.rejects(
          store.recordProgress([samples[0]!, { ...samples[0]!, jobId: 'j-nothere2' }]),
          isCubeError('UNKNOWN_ID'),
        );
        assert.equal((await store.listProgress(job.id)).length, samples.length, 'all or none');
      }));

    test('a checkpoint is recorded once per step and level, with its events only the first time', () =>
      withStore(async ({ store }) => {
        const job = await store.createJob(sampleSpec());
        const committed = (step: number, level: 'L1' | 'L2' | 'L3'): NewEvent => ({
          kind: 'checkpoint-committed',
          jobId: job.id,
          data: { step, level },
        });
        await store.recordCheckpoint({ jobId: job.id, step: 20, level: 'L1', at: 2_000 }, [
          committed(20, 'L1'),
        ]);
        await store.recordCheckpoint({ jobId: job.id, step: 10, level: 'L1', at: 1_000 }, [
          committed(10, 'L1'),
        ]);
        await store.recordCheckpoint({ jobId: job.id, step: 10, level: 'L3', at: 1_500 }, [
          committed(10, 'L3'),
        ]);
        await store.recordCheckpoint({ jobId: job.id, step: 10, level: 'L1', at: 1_100 }, [
          committed(10, 'L1'),
        ]);
        assert.deepEqual(await store.listCheckpoints(job.id), [
          { step: 10, level: 'L1', at: 1_000 },
          { step: 10, level: 'L3', at: 1_500 },
          { step: 20, level: 'L1', at: 2_000 },
        ]);
        const events = await store.listEvents({ jobId: job.id, kinds: ['checkpoint-committed'] });
        assert.deepEqual(
          events.map((e) => e.data),
          [
            { step: 20, level: 'L1' },
            { step: 10, level: 'L1' },
            { step: 10, level: 'L3' },
          ],
        );
        assert.deepEqual(await store.listCheckpoints('j-nothere2'), []);
      }));

    test('everything written survives closing and reopening, and event ids keep increasing', async (t) => {
      const under = await open();
      const { store, reopen } = under;
      if (reopen === undefined) {
        await store.close();
        t.skip('this database does not outlive its store');
        return;
      }
      const token = await store.createApiToken('user');
      const joinToken = await store.createJoinToken('agents');
      const { node, credential } = await store.joinNode(sampleJoin('node-a'));
      const job = await store.createJob(sampleSpec());
      await store.updateJob(job.id, { state: 'running', attempt: 1, startedAt: 123 }, [
        { kind: 'job-running', jobId: job.id, attempt: 1 },
      ]);
      await store.recordProgress([
        { jobId: job.id, attempt: 1, rank: 0, step: 1, loss: 2.5, tokensPerS: 10, at: 5 },
      ]);
      await store.recordCheckpoint({ jobId: job.id, step: 1, level: 'L3', at: 6 });
      const events = await store.listEvents({});
      const lastId = await store.lastEventId();
      const jobBefore = await store.getJob(job.id);
      const nodeBefore = await store.getNode(node.id);
      await store.close();

      const again = await reopen();
      try {
        assert.equal(await again.verifyApiToken(token.token), true);
        assert.equal(await again.verifyJoinToken(joinToken.token), true);
        assert.deepEqual(await again.authenticateNode(node.id, credential), nodeBefore);
        assert.deepEqual(await again.getJob(job.id), jobBefore);
        assert.deepEqual(await again.listEvents({}), events);
        assert.equal((await again.listProgress(job.id)).length, 1);
        assert.equal((await again.listCheckpoints(job.id)).length, 1);
        const [next] = await again.appendEvents([{ kind: 'job-succeeded', jobId: job.id }]);
        assert.ok((next?.id ?? 0) > lastId, `${next?.id} > ${lastId}`);
      } finally {
        await again.close();
      }
    });
  });
}
