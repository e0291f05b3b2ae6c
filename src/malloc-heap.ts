/**
 * Keeps glibc's malloc heap in a process that streams large bodies (issue 12, scenario c).
 *
 * Every socket read is a fresh 64 KiB block from malloc, freed when a scavenge finds its Buffer
 * dead. Streaming leaves many MiB of such blocks between two scavenges; once they are freed,
 * glibc gives the top of its heap back to the kernel (its trim threshold is 128 KiB), and the
 * next reads fault every page in again. In 1 MiB downloads those page faults were a fifth of the
 * proxy's CPU time. glibc raises its trim threshold to twice the size of any mmap-backed block
 * the program frees (mallopt(3), "dynamic mmap threshold"), up to twice 32 MiB: freeing one
 * untouched 30 MiB block keeps up to 60 MiB of freed heap for reuse. That memory stays in the
 * process's RSS, so the hint waits for a sustained stream, `burstBytes` of bodies within a
 * second: a process that relays small messages, or a large body now and then, keeps glibc's
 * default. Other C libraries ignore the hint: the block is never touched, so it costs nothing.
 */

/** Body bytes within one second that turn the hint on. */
export const burstBytes = 32 * 1024 * 1024;

const hintBytes = 30 * 1024 * 1024;

let kept = false;
let windowStart = -Infinity;
let windowBytes = 0;

/** The hint has been given (tests). */
export function mallocHeapKept(): boolean {
  return kept;
}

/**
 * Counts body bytes as they are relayed; reads the clock once per `burstBytes`. Giving the hint
 * allocates the block and drops it; the next scavenge frees it (gc-tuning.ts sweeps dead
 * ArrayBuffers inside the scavenge), which raises glibc's limits.
 */
export function noteBodyBytes(bytes: number): void {
  if (kept) return;
  windowBytes += bytes;
  if (windowBytes < burstBytes) return;
  const now = performance.now();
  if (now - windowStart <= 1000) {
    kept = true;
    Buffer.allocUnsafeSlow(hintBytes);
    return;
  }
  windowStart = now;
  windowBytes = 0;
}
