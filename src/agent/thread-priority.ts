import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/**
 * Sets the niceness of every thread of this process to `nice` (only ever lowering priority)
 * and returns how many threads it saw. Linux niceness is per thread, and `setpriority` on the
 * process id changes the main thread alone, so each task in /proc/self/task is set; a thread
 * created later inherits its creator's niceness, which by then is `nice`. Repeats until a pass
 * finds nothing to change, so a thread started meanwhile is not missed. Where there is no
 * /proc (not Linux) only the calling thread can be set.
 */
export function niceEveryThread(nice: number): number {
  let tids: number[];
  try {
    tids = readdirSync('/proc/self/task').map(Number);
  } catch {
    setPriority(nice);
    return 1;
  }
  for (let pass = 0; pass < 10; pass += 1) {
    let changed = 0;
    tids = readdirSync('/proc/self/task').map(Number);
    for (const tid of tids) {
      try {
        if (getPriority(tid) >= nice) continue;
        setPriority(tid, nice);
        changed += 1;
      } catch {
        // the thread ended meanwhile
      }
    }
    if (changed === 0) break;
  }
  return tids.length;
}
