import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';
import { whenBodiesStream } from './body-streams.js';

/**
 * V8 settings for the proxy process, set by the CLI before it serves (issue 12).
 *
 * Every socket read through a Readable (client sockets, TLS backends) is a new 64 KiB ArrayBuffer
 * that V8 counts as external memory. By default a background thread sweeps the dead ones after
 * each scavenge, and only then is the count brought
 * down; on a busy core that thread runs late, the count climbs, and V8 starts mark-compacts for
 * "external memory pressure". Whether a process falls into that mode varied from one start to
 * the next: 0 to 350 mark-compacts and 2.7 to 6.5 s of GC pauses per 10,000 1 MiB downloads.
 * Sweeping them inside the scavenge: no mark-compacts and 1.3 to 2.0 s, in every run.
 * The flag is read at each sweep, so setting it at run time is safe (V8 ignores an unknown flag).
 *
 * Requests in flight across young GCs are promoted, so under many connections the old generation
 * fills with dead requests; V8 lets it grow to up to 4x the live size before a full GC. 1.35x
 * keeps that garbage bounded (read at each full GC, so settable at run time).
 *
 * Allocation-site pretenuring: when a scavenge finds most objects of one allocation site alive,
 * V8 allocates that site's objects in the old generation from then on. A burst of requests in
 * flight across a scavenge (a warm-up, many connections) is enough to flip the sites of the
 * per-request objects, and the decision sticks: each request then fills the old generation, and
 * a full GC ran every 50 ms. In the shared bench, 64 KiB POSTs after a warm-up of small GETs went
 * at 5,500-6,400 req/s with it and 10,700-11,400 without. A proxy's per-request objects die young,
 * so it is off (read when V8 processes the feedback, so settable at run time).
 */
export const proxyV8Flags: readonly string[] = ['--no-concurrent-array-buffer-sweeping', '--heap-growing-percent=35', '--no-allocation-site-pretenuring'];

/**
 * The young generation stops growing at semi-spaces of this size (V8's default grows them to
 * 16 MiB, 32 MiB resident). `--max-semi-space-size` is only read when the heap is set up, but
 * the growth factor is read at each growth: it becomes 1 once the semi-space is this big, or is
 * at start-up already (module loading grows it). The check runs after each scavenge, a turn of
 * the event loop later: a turn that allocates enough for two growths goes one step past the cap.
 * See docs/performance.md, "Memory".
 */
export const youngGenerationCapMiB = 4;

/**
 * Only V8 11 (Node 20) grows the young generation by that factor. V8 12 and later size it by
 * other rules, where a growth factor of 1 did not cap it and made it swing (Node 24: from 1 to
 * 19 MiB); there the CLI leaves it alone.
 */
export const youngGenerationCapApplies = Number(process.versions.v8.split('.')[0]) <= 11;

const newSpaceMiB = (): number => (v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0) / 2 / 1048576;

/** Stops the young generation's growth once a semi-space reaches `capMiB`; returns when it has. */
export function capYoungGeneration(capMiB: number): Promise<void> {
  const growthFactor = (factor: number): void => v8.setFlagsFromString(`--semi-space-growth-factor=${factor}`);
  growthFactor(1);
  if (newSpaceMiB() >= capMiB) return Promise.resolve();
  return new Promise((resolve) => {
    // Growth happens at the end of a scavenge; check after each one until it is big enough.
    const observer = new PerformanceObserver(() => {
      if (newSpaceMiB() < capMiB) return;
      growthFactor(1);
      observer.disconnect();
      resolve();
    });
    observer.observe({ entryTypes: ['gc'] });
    // No growth until the turn that loads the process is over: the check above cannot run within
    // it, and loading alone grew the semi-spaces from 0.5 to 8 MiB. Then V8's own factor, 2.
    setImmediate(() => growthFactor(2));
  });
}

export function tuneGarbageCollector(): void {
  for (const flag of proxyV8Flags) v8.setFlagsFromString(flag);
  if (youngGenerationCapApplies) void capYoungGeneration(youngGenerationCapMiB);
  whenBodiesStream(tuneForBulkTransfer);
}

/** Freed untouched, this block raises glibc's heap trim threshold to twice its size (see below). */
const mallocHintBytes = 30 * 1024 * 1024;

/**
 * Run once the process streams bodies (body-streams.ts): 1 MiB downloads in the shared bench.
 *
 * The old generation's bound goes back to V8's own. V8 starts marking the old generation when
 * less room than the young generation's capacity is left below its limit; at 1.35x a 13 MiB heap
 * with 16 MiB semi-spaces there never was, and downloads ran a mark-compact every 150-200 ms:
 * 10 % more CPU per download.
 *
 * glibc keeps its freed heap. Each socket read of a body is a fresh block from malloc (64 KiB,
 * or a backend's 256 KiB read region), freed when a scavenge finds its Buffer dead; a stream leaves tens of MiB of them between two scavenges, and
 * once they are freed glibc gives the top of its heap back to the kernel (past 128 KiB), so the
 * next reads fault every page in again: a fifth of the CPU time of 1 MiB downloads. Freeing an
 * mmap-backed block raises glibc's trim threshold to twice its size (mallopt(3), "dynamic mmap
 * threshold"): up to 60 MiB of freed heap is then kept for reuse. Other C libraries ignore the
 * hint; the block is never touched, so it costs nothing. The next scavenge frees it (dead
 * ArrayBuffers are swept inside it, see above).
 *
 * Both keep more memory, so a process that relays small messages, or a large body now and then,
 * never runs this.
 */
export function tuneForBulkTransfer(): void {
  v8.setFlagsFromString('--heap-growing-percent=0');
  Buffer.allocUnsafeSlow(mallocHintBytes);
}
