// Starts the compute worker thread. A worker does not inherit tsx's loader when the parent
// registered it through the API (bin/cube.js), so the worker registers it itself.
import { register } from 'tsx/esm/api';

register();
await import('./compute-worker.ts');
