// Preloaded into the proxy by bench/memory.mjs (`node --require`): on SIGUSR2 it appends one JSON
// line to $SWY_MEMORY_OUT with where the resident memory is (V8 spaces, external, malloc, smaps).
'use strict';
const fs = require('node:fs');
const v8 = require('node:v8');

const MiB = (n) => Math.round((n / 1048576) * 10) / 10;

// SWY_MEMORY_GC=1: also a full GC, then the live size (a diagnostic: it changes what follows).
let fullGc = null;
if (process.env.SWY_MEMORY_GC === '1') {
  v8.setFlagsFromString('--expose-gc');
  fullGc = require('node:vm').runInNewContext('gc');
}

process.on('SIGUSR2', () => {
  const usage = process.memoryUsage();
  const heap = v8.getHeapStatistics();
  const spaces = {};
  for (const s of v8.getHeapSpaceStatistics()) {
    if (s.physical_space_size > 0) spaces[s.space_name.replace(/_space$/, '')] = [MiB(s.space_used_size), MiB(s.physical_space_size)];
  }
  const smaps = {};
  for (const line of fs.readFileSync('/proc/self/smaps_rollup', 'utf8').split('\n')) {
    const m = /^(Rss|Anonymous|Private_Clean|Private_Dirty|Shared_Clean|Pss_File|Pss_Anon):\s+(\d+) kB/.exec(line);
    if (m !== null) smaps[m[1]] = Math.round(Number(m[2]) / 102.4) / 10;
  }
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const hwm = Math.round(Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 102.4) / 10;
  const packages = new Set();
  for (const file of Object.keys(require.cache)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
    if (m !== null) packages.add(m[1]);
  }
  const line = {
    rss: MiB(usage.rss), hwm,
    heapCommitted: MiB(heap.total_physical_size), heapUsed: MiB(usage.heapUsed), spaces,
    external: MiB(usage.external), arrayBuffers: MiB(usage.arrayBuffers), malloced: MiB(heap.malloced_memory),
    smaps, cjsPackages: [...packages].sort(),
  };
  if (fullGc !== null) {
    fullGc();
    line.liveAfterFullGc = {};
    for (const s of v8.getHeapSpaceStatistics()) if (s.space_used_size > 0) line.liveAfterFullGc[s.space_name] = MiB(s.space_used_size);
  }
  fs.appendFileSync(process.env.SWY_MEMORY_OUT, JSON.stringify(line) + '\n');
});
