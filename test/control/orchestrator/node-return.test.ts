// A node that goes silent and comes back: a cordon it had before is kept, a plain silence is
// forgiven. Real orchestrator and SQLite store, injected clock, fake node reports.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { Harness } from './harness.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

test('a cordoned node that goes silent and heartbeats again comes back cordoned, not ready', async () => {
  h = await Harness.start({ workers: 2, spares: 0 });
  const n = h.node('node-1');
  n.probes = [{ name: 'gpu-check', ok: false, message: 'Xid 79' }];
  await h.runUntil('the probe cordon', 5000, async () =>
    (await h?.stored('node-1'))?.state === 'cordoned' ? true : null,
  );
  n.alive = false;
  await h.runUntil('the node to go down', 15_000, async () =>
    (await h?.stored('node-1'))?.state === 'down' ? true : null,
  );
  n.probes = [];
  n.alive = true;
  await h.run(3000);
  const back = await h.stored('node-1');
  assert.equal(back.state, 'cordoned');
  const ups = await h.events({ kinds: ['node-up'] });
  assert.match((ups.at(-1)?.data as { reason?: string }).reason ?? '', /stays cordoned/);
});

test('a ready node that goes silent and heartbeats again comes back ready', async () => {
  h = await Harness.start({ workers: 2, spares: 0 });
  const n = h.node('node-1');
  n.alive = false;
  await h.runUntil('the node to go down', 15_000, async () =>
    (await h?.stored('node-1'))?.state === 'down' ? true : null,
  );
  n.alive = true;
  await h.run(3000);
  assert.equal((await h.stored('node-1')).state, 'ready');
});
