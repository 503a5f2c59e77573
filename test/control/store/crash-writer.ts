/**
 * Run by sqlite.test.ts in a child process: writes to the store at argv[2], reports what it
 * wrote, then SIGKILLs itself the moment the last write resolves, with no close and no exit.
 */
import { writeSync } from 'node:fs';
import { openSqliteStore } from '../../../src/control/store/index.ts';
import { sampleJoin, sampleSpec } from './state-store.contract.ts';

const path = process.argv[2];
if (path === undefined) throw new Error('usage: crash-writer.ts <database file>');
const store = await openSqliteStore({ path });
const token = await store.createApiToken('crash');
const { node, credential } = await store.joinNode(sampleJoin('crash-node'));
const job = await store.createJob(sampleSpec('crash-job'));
// Written before the last call: the parent learns ids without waiting on anything after it.
writeSync(
  1,
  `${JSON.stringify({ token: token.token, nodeId: node.id, credential, jobId: job.id })}\n`,
);
await store.updateJob(job.id, { state: 'running', attempt: 1 }, [
  { kind: 'job-running', jobId: job.id, attempt: 1 },
]);
process.kill(process.pid, 'SIGKILL');
