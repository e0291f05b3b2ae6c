/**
 * Notices when the process streams bodies (issue 12, scenario c): `burstBytes` of request or
 * response bodies, and as many again within a second. Then it runs what was registered, once:
 * the CLI registers its bulk-transfer tuning (gc-tuning.ts); the library registers nothing, so
 * an embedding application's process is left as it is.
 */

/** Body bytes within one second that count as a stream. */
export const burstBytes = 32 * 1024 * 1024;

let onStream: (() => void) | null = null;
let noticed = false;
let windowStart = -Infinity;
let windowBytes = 0;

/** What to run once bodies stream; null: nothing. */
export function whenBodiesStream(fn: (() => void) | null): void {
  onStream = fn;
  windowStart = -Infinity;
  windowBytes = 0;
}

/** A stream was noticed and its tuning run (tests). */
export function bodiesStreamed(): boolean {
  return noticed;
}

/** Counts body bytes as they are relayed; reads the clock once per `burstBytes`. */
export function noteBodyBytes(bytes: number): void {
  if (onStream === null) return;
  windowBytes += bytes;
  if (windowBytes < burstBytes) return;
  const now = performance.now();
  if (now - windowStart <= 1000) {
    const fn = onStream;
    onStream = null;
    noticed = true;
    fn();
    return;
  }
  windowStart = now;
  windowBytes = 0;
}
