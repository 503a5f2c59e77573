// The body of the compute worker thread: plans and simulations run here, off the control
// plane's event loop, so a long search never delays a heartbeat.
import { parentPort } from 'node:worker_threads';
import { CubeError } from '../../core/index.ts';
import { runPlan, runSimulation, type PlanInput, type SimulateInput } from './compute-jobs.ts';

/** A request to the worker. */
export type ComputeRequest =
  | { readonly id: number; readonly kind: 'plan'; readonly input: PlanInput }
  | { readonly id: number; readonly kind: 'simulate'; readonly input: SimulateInput };

/** The worker's answer to one request. */
export type ComputeReply =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | {
      readonly id: number;
      readonly ok: false;
      readonly error: ReturnType<CubeError['toJSON']>;
    };

function answer(request: ComputeRequest): ComputeReply {
  try {
    switch (request.kind) {
      case 'plan':
        return { id: request.id, ok: true, result: runPlan(request.input) };
      case 'simulate':
        return { id: request.id, ok: true, result: runSimulation(request.input) };
      default:
        return request satisfies never;
    }
  } catch (error) {
    const e =
      error instanceof CubeError
        ? error
        : new CubeError('INTERNAL', error instanceof Error ? error.message : String(error));
    return { id: request.id, ok: false, error: e.toJSON() };
  }
}

parentPort?.on('message', (request: ComputeRequest) => {
  parentPort?.postMessage(answer(request));
});
