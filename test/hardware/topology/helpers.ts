import { fileURLToPath } from 'node:url';
import { createTopology, loadClusterFile, type Topology } from '../../../src/hardware/index.ts';

/** Path of an example cluster file shipped in examples/clusters. */
export function examplePath(name: string): string {
  return fileURLToPath(new URL(`../../../examples/clusters/${name}.yaml`, import.meta.url));
}

const loaded = new Map<string, Topology>();

/** The topology of an example cluster (loaded once per test file). */
export function example(name: string): Topology {
  let topology = loaded.get(name);
  if (topology === undefined) {
    topology = createTopology(loadClusterFile(examplePath(name)));
    loaded.set(name, topology);
  }
  return topology;
}

/** Device indices `from` .. `from + count - 1`. */
export function range(count: number, from = 0): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

/** Asserts two numbers agree to a relative tolerance (1e-9 by default). */
export function near(actual: number, expected: number, tolerance = 1e-9): boolean {
  return Math.abs(actual - expected) <= tolerance * Math.max(1, Math.abs(expected));
}
