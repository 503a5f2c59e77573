/**
 * Leases on steps: while a step is read (a restore, a replication, a persist to L3) its holder
 * keeps a lease, and garbage collection leaves the step alone. In memory, per process: the
 * node daemon is the one process that both reads and collects on a node.
 */
export class LeaseRegistry {
  readonly #held = new Map<string, number>();

  static #key(job: string, step: number): string {
    return `${job}\u0000${step}`;
  }

  /**
   * Takes a lease on `step` of `job` (at every level) and returns its release function.
   * Leases count: the step is free again when every holder has released. Releasing twice is
   * harmless.
   */
  acquire(job: string, step: number): () => void {
    const key = LeaseRegistry.#key(job, step);
    this.#held.set(key, (this.#held.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#held.get(key) ?? 1) - 1;
      if (left <= 0) this.#held.delete(key);
      else this.#held.set(key, left);
    };
  }

  /** True while at least one lease on the step is held. */
  isHeld(job: string, step: number): boolean {
    return this.#held.has(LeaseRegistry.#key(job, step));
  }

  /** The leased steps of a job, oldest first. */
  heldSteps(job: string): number[] {
    const prefix = `${job}\u0000`;
    return [...this.#held.keys()]
      .filter((k) => k.startsWith(prefix))
      .map((k) => Number(k.slice(prefix.length)))
      .sort((a, b) => a - b);
  }
}
