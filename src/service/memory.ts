// Memory given back once a burst of reads is over (issue 9 goal: a dedicated daemon returns to within 16 MiB of its
// idle size after a cold read). The chunk arena gives back its own pages; what else the burst left is the heap's
// garbage, which V8 collects and returns to the kernel only when its memory reducer gets round to it (it often had
// not 60 s later: 9-26 MiB of heap pages stayed, BENCHMARKS.md run AA), and the free memory of malloc's per-thread
// arenas (the libuv pool's decodes and cache writes). Both are given back here, once per quiet period.
import v8 from 'node:v8';
import vm from 'node:vm';
import { native } from '../native/index.js';

let fullGc: (() => void) | null | undefined;

/** A full garbage collection now (the `gc` of --expose-gc, obtained once); null where the runtime refuses. */
function collector(): (() => void) | null {
  if (fullGc === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      fullGc = vm.runInNewContext('gc') as () => void;
    } catch {
      fullGc = null;
    }
  }
  return fullGc;
}

/** Collects the heap's garbage, then hands malloc's free memory back to the kernel. */
export function reclaimMemory(): void {
  collector()?.();
  native.trimMalloc();
}
