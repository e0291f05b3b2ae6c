#!/usr/bin/env node
// Where the proxy's resident memory goes, shaped like the shared bench: start, a 5 s warm-up of
// scenario (a), then (a) 64 and (b) 1000 keep-alive connections with wrk (2 s warm-up, VmHWM reset,
// 7 s measured), in one process as the bench runs it. Per phase: peak RSS, a breakdown (V8 spaces,
// external, malloc, smaps; bench/memory-probe.cjs), and per 10,000 requests young GCs and CPU ms.
//
//   node bench/memory.mjs [--node-flags "--max-semi-space-size=4"] [--seconds 7]
//     [--proxy "node dist/cli.js --log-level warn --admin 127.0.0.1:0"] [--pin 0]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { startBackends, startProxy } from './measure.mjs';

function flag(args, name, fallback) {
  const at = args.indexOf(name);
  return at === -1 ? fallback : args[at + 1];
}

function wrk(port, connections, seconds) {
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', `http://127.0.0.1:${port}/`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
    child.once('error', reject);
    child.once('exit', (code) => {
      const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
      const errors = /Socket errors:.*|Non-2xx.*/g;
      if (code !== 0 || Number.isNaN(requests)) reject(new Error(`wrk failed (${code}): ${out}`));
      else resolve({ requests, errors: out.match(errors) ?? [] });
    });
  });
}

function cpuTicks(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

const scavenges = (text) => (text.match(/\bgc=s\b/g) ?? []).length;
const markCompacts = (text) => (text.match(/\bgc=mc\b/g) ?? []).length;

async function snapshot(pid, file) {
  const before = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').length : 0;
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n') : [];
    if (lines.length > before && lines.at(-1) === '') return JSON.parse(lines.at(-2));
    await sleep(20);
  }
  throw new Error('no memory snapshot from the proxy');
}

async function main() {
  const args = process.argv.slice(2);
  const seconds = Number(flag(args, '--seconds', '7'));
  const nodeFlags = flag(args, '--node-flags', '').split(/\s+/).filter(Boolean);
  const proxyCmd = flag(args, '--proxy', 'node dist/cli.js --log-level warn --admin 127.0.0.1:0');
  const pinCpu = flag(args, '--pin', null);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swy-memory-'));
  const out = path.join(dir, 'memory.jsonl');
  const probe = fileURLToPath(new URL('./memory-probe.cjs', import.meta.url));
  const backends = await startBackends(dir);
  const flags = [...nodeFlags, '--trace-gc-nvp', '--require', probe];
  const proxy = await startProxy(proxyCmd, flags, backends.urls, { SWY_MEMORY_OUT: out }, pinCpu);
  const pid = proxy.child.pid;
  const report = { label: flag(args, '--label', [proxyCmd, ...nodeFlags].join(' ')) };
  try {
    await sleep(1000);
    report.start = await snapshot(pid, out);
    await wrk(proxy.port, 64, 5);
    for (const [name, connections] of [['a', 64], ['b', 1000]]) {
      await wrk(proxy.port, connections, 2);
      fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
      const gcFrom = proxy.out.stdout.length;
      const ticks = cpuTicks(pid);
      const run = await wrk(proxy.port, connections, seconds);
      const per = 10000 / run.requests;
      const gc = proxy.out.stdout.slice(gcFrom);
      const snap = await snapshot(pid, out);
      report[name] = {
        requests: run.requests, errors: run.errors, peakRss: snap.hwm,
        scavengesPer10k: +(scavenges(gc) * per).toFixed(1), markCompactsPer10k: +(markCompacts(gc) * per).toFixed(1),
        cpuMsPer10k: Math.round((cpuTicks(pid) - ticks) * 10 * per), after: snap,
      };
    }
  } finally {
    const exited = new Promise((resolve) => proxy.child.once('exit', resolve));
    try { process.kill(-pid, 'SIGTERM'); } catch {}
    await exited;
    const nginx = new Promise((resolve) => backends.child.once('exit', resolve));
    try { process.kill(-backends.child.pid, 'SIGQUIT'); } catch {}
    await nginx;
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (args.includes('--json')) console.log(JSON.stringify(report));
  else {
    const row = (p) => `start ${report.start.rss} MiB · (a) peak ${report.a.peakRss} MiB, ${report.a.scavengesPer10k} young GCs, ${report.a.markCompactsPer10k} full GCs and ${report.a.cpuMsPer10k} CPU ms per 10k · (b) peak ${report.b.peakRss} MiB, ${report.b.scavengesPer10k} young GCs, ${report.b.markCompactsPer10k} full GCs and ${report.b.cpuMsPer10k} CPU ms per 10k`;
    console.log(`${report.label}\n  ${row()}`);
    for (const phase of ['start', 'a', 'b']) {
      const s = phase === 'start' ? report.start : report[phase].after;
      console.log(`  ${phase.padEnd(5)} rss ${s.rss} = heap ${s.heapCommitted} (used/committed: ${Object.entries(s.spaces).map(([k, [used, committed]]) => `${k} ${used}/${committed}`).join(', ')}) · external ${s.external} (array buffers ${s.arrayBuffers}) · malloc'd by V8 ${s.malloced} · anon ${s.smaps.Anonymous}, file ${s.smaps.Private_Clean + s.smaps.Shared_Clean}`);
    }
    if (report.a.errors.length + report.b.errors.length > 0) console.log(`  wrk: ${[...report.a.errors, ...report.b.errors].join('; ')}`);
  }
}

main().catch((err) => {
  console.error(err.stack ?? String(err));
  process.exitCode = 1;
});
