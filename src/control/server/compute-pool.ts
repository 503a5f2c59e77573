import { Worker } from 'node:worker_threads';
import { CubeError } from '../../core/index.ts';
import type { PlanInput, SimulateInput } from './compute-jobs.ts';
import type { ComputeReply, ComputeRequest } from './compute-worker.ts';

// Compiled (dist/), the worker runs compute-worker.js as it is; from the sources, through an
// entry that registers tsx first, since a worker does not inherit the loader bin/cube.js
// registered through tsx's API.
const entry = new URL(
  import.meta.url.endsWith('.ts') ? './compute-worker-entry.mjs' : './compute-worker.js',
  import.meta.url,
);

type Job = {
  readonly request: ComputeRequest;
  readonly timeoutMs: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
};

/**
 * One worker thread for the planner and the simulator, started on first use. Requests run
 * one at a time, in order (a queue of at most `maxQueued`); one that runs past its time limit
 * is stopped with its worker, which is started afresh for the next.
 */
export class ComputeWorker {
  readonly #maxQueued: number;
  readonly #queue: Job[] = [];
  #worker: Worker | null = null;
  #running: { job: Job; timer: NodeJS.Timeout } | null = null;
  #nextId = 1;
  #closed = false;

  constructor(options: { maxQueued?: number } = {}) {
    this.#maxQueued = options.maxQueued ?? 8;
  }

  /** Plans in the worker (see `runPlan`). */
  plan(input: PlanInput, options: { timeoutMs: number }): Promise<unknown> {
    return this.#submit({ id: this.#nextId++, kind: 'plan', input }, options.timeoutMs);
  }

  /** Simulates in the worker (see `runSimulation`). */
  simulate(input: SimulateInput, options: { timeoutMs: number }): Promise<unknown> {
    return this.#submit({ id: this.#nextId++, kind: 'simulate', input }, options.timeoutMs);
  }

  /** Stops the worker; queued and running requests fail. */
  async close(): Promise<void> {
    this.#closed = true;
    const failed = new CubeError('INFEASIBLE', 'the control plane is shutting down');
    for (const job of this.#queue.splice(0)) job.reject(failed);
    if (this.#running !== null) {
      clearTimeout(this.#running.timer);
      this.#running.job.reject(failed);
      this.#running = null;
    }
    const worker = this.#worker;
    this.#worker = null;
    if (worker !== null) await worker.terminate();
  }

  #submit(request: ComputeRequest, timeoutMs: number): Promise<unknown> {
    if (this.#closed)
      return Promise.reject(new CubeError('INFEASIBLE', 'the control plane is shutting down'));
    if (this.#queue.length >= this.#maxQueued)
      return Promise.reject(
        new CubeError(
          'INFEASIBLE',
          `the planner is busy (${this.#queue.length} requests waiting); try again shortly`,
        ),
      );
    return new Promise((resolve, reject) => {
      this.#queue.push({ request, timeoutMs, resolve, reject });
      this.#next();
    });
  }

  #start(): Worker {
    const worker = new Worker(entry);
    worker.unref();
    worker.on('message', (reply: ComputeReply) => {
      const running = this.#running;
      if (running === null || running.job.request.id !== reply.id) return;
      clearTimeout(running.timer);
      this.#running = null;
      if (reply.ok) running.job.resolve(reply.result);
      else
        running.job.reject(
          new CubeError(reply.error.code, reply.error.message, {
            where: reply.error.where,
            ...(reply.error.hint === undefined ? {} : { hint: reply.error.hint }),
          }),
        );
      this.#next();
    });
    worker.on('error', (error) => this.#lost(worker, error.message));
    worker.on('exit', (code) => this.#lost(worker, `the worker exited with code ${code}`));
    return worker;
  }

  /** The worker died: fail what it was doing, start afresh for the rest. */
  #lost(worker: Worker, why: string): void {
    if (this.#worker !== worker) return;
    this.#worker = null;
    const running = this.#running;
    this.#running = null;
    if (running !== null) {
      clearTimeout(running.timer);
      running.job.reject(new CubeError('INTERNAL', `the planner's worker failed: ${why}`));
    }
    this.#next();
  }

  #next(): void {
    if (this.#running !== null || this.#closed) return;
    const job = this.#queue.shift();
    if (job === undefined) return;
    const worker = this.#worker ?? (this.#worker = this.#start());
    const timer = setTimeout(() => {
      if (this.#running?.job !== job) return;
      this.#running = null;
      this.#worker = null;
      void worker.terminate();
      job.reject(
        new CubeError(
          'INFEASIBLE',
          `the ${job.request.kind === 'plan' ? 'plan' : 'simulation'} took longer than ${job.timeoutMs / 1000} s and was stopped`,
          { hint: 'ask for fewer GPUs, trials or days, or pin more plan dimensions' },
        ),
      );
      this.#next();
    }, job.timeoutMs);
    this.#running = { job, timer };
    worker.postMessage(job.request);
  }
}
