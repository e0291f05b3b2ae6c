#!/usr/bin/env node
// Counts per request under the shared bench's own conditions: the proxy alone on one CPU, wrk
// (-t1) and two nginx backends on the other, a time-bounded run. perf stat on the proxy gives
// its CPU time (task-clock), system calls and failed accept4 calls, divided by the requests wrk
// completed; wrk --latency gives the distribution. With --eld, a preloaded module samples
// event-loop delay (perf_hooks) and GC pauses over the measured window.
//   node bench/wrk-counts.mjs [--scenario a|b|c|d|e] [--seconds 5] [--warmup 2] [--runs 1]
//     [--proxy "node dist/cli.js --log-level warn --admin 127.0.0.1:0"] [--node-flags "…"] [--eld]
//     [--prelude SECONDS]
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBackends, startProxy } from './measure.mjs';

const scenarios = {
  a: { conns: 64, close: false, path: '/' },
  b: { conns: 1000, close: false, path: '/' },
  // As the shared bench: (c) 1 MiB downloads, (d) a 64 KiB POST body (wrk-post.lua).
  c: { conns: 16, close: false, path: '/1m' },
  d: { conns: 64, close: false, path: '/upload', post: 64 * 1024 },
  e: { conns: 64, close: true, path: '/' },
};
const args = process.argv.slice(2);
const flag = (name, fallback) => (args.indexOf(name) === -1 ? fallback : args[args.indexOf(name) + 1]);
const scenarioName = flag('--scenario', 'e');
const scenario = scenarios[scenarioName];
const seconds = Number(flag('--seconds', '5'));
const warmup = Number(flag('--warmup', '2'));
const runs = Number(flag('--runs', '1'));
const proxyCmd = flag('--proxy', 'node dist/cli.js --log-level warn --admin 127.0.0.1:0');
const label = flag('--label', proxyCmd);
const eld = args.includes('--eld');
const prelude = Number(flag('--prelude', '0'));
const nodeFlags = flag('--node-flags', '').split(/\s+/).filter(Boolean);
const here = path.dirname(fileURLToPath(import.meta.url));

function run(cmd, argv, cpu) {
  return new Promise((resolve) => {
    const child = spawn('taskset', ['-c', cpu, cmd, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { out += d; });
    child.once('exit', () => resolve(out));
  });
}

function wrk(port, secs, latency, conns = scenario.conns) {
  const argv = ['-t1', `-c${conns}`, `-d${secs}s`, '--timeout', '10s', ...(latency ? ['--latency'] : [])];
  if (scenario.close) argv.push('-H', 'Connection: close');
  if (scenario.post !== undefined) argv.push('-s', path.join(here, 'wrk-post.lua'));
  return run('wrk', [...argv, `http://127.0.0.1:${port}${scenario.path}`], '1');
}

function parseWrk(text) {
  const requests = Number(/(\d+) requests in/.exec(text)?.[1] ?? 0);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0);
  const errors = /Socket errors: (.*)/.exec(text)?.[1] ?? 'none';
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  const t = /Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB)/.exec(text);
  const mbps = t === null ? 0 : +(Number(t[1]) * { B: 1 / 1048576, KB: 1 / 1024, MB: 1, GB: 1024 }[t[2]] * 1.048576).toFixed(1);
  const lat = {};
  for (const m of text.matchAll(/^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$/gm)) lat[`p${m[1]}`] = +(Number(m[2]) * (m[3] === 'us' ? 0.001 : m[3] === 's' ? 1000 : 1)).toFixed(2);
  return { requests, rps, errors, non2xx, mbps, lat };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swy-wrk-'));
const backends = await startBackends(dir);
spawnSync('taskset', ['-a', '-p', '-c', '1', String(backends.child.pid)]);
for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
  try { if (fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[3] === String(backends.child.pid)) spawnSync('taskset', ['-a', '-p', '-c', '1', pid]); } catch {}
}
const eldFile = path.join(dir, 'eld.json');
const flags = [...nodeFlags, ...(eld ? ['--import', path.join(here, 'loop-delay.mjs')] : [])];
try {
  for (let r = 0; r < runs; r++) {
    const proxy = await startProxy(proxyCmd, flags, backends.urls, { SWY_LOOP_DELAY_FILE: eldFile }, '0');
    try {
      // --prelude SECONDS: scenario (a)'s 64 connections first, as the shared bench runs (a) before (b) in one process.
      if (prelude > 0) await wrk(proxy.port, prelude, false, 64);
      await wrk(proxy.port, warmup, false);
      const perfFile = path.join(dir, 'perf.txt');
      const perf = spawn('perf', ['stat', '-x', ',', '-o', perfFile, '-e', 'task-clock', '-e', 'raw_syscalls:sys_enter', '-e', 'syscalls:sys_enter_accept4', '-e', 'syscalls:sys_exit_accept4', '--filter', 'ret < 0', '-e', 'syscalls:sys_enter_epoll_pwait', '-e', 'syscalls:sys_enter_read', '-e', 'syscalls:sys_enter_write', '-e', 'syscalls:sys_enter_writev', '-p', String(proxy.child.pid)], { stdio: 'ignore' });
      await new Promise((resolve) => setTimeout(resolve, 500));
      if (eld) process.kill(proxy.child.pid, 'SIGUSR2');
      const text = await wrk(proxy.port, seconds, true);
      if (eld) process.kill(proxy.child.pid, 'SIGUSR2');
      const done = new Promise((resolve) => perf.once('exit', resolve));
      process.kill(perf.pid, 'SIGINT');
      await done;
      const w = parseWrk(text);
      const counts = {};
      for (const line of fs.readFileSync(perfFile, 'utf8').split('\n')) {
        const [value, , event] = line.split(',');
        if (event !== undefined && /^[\d.]+$/.test(value)) counts[event.replace(/^(raw_)?syscalls:sys_/, '')] = Number(value);
      }
      const per10k = (v) => Math.round(((v ?? 0) * 10000) / Math.max(1, w.requests));
      const result = {
        label, scenario: scenarioName, rps: w.rps, ...(w.mbps > 0 && scenarioName === 'c' ? { mbps: w.mbps } : {}), errors: w.errors, ...(w.non2xx > 0 ? { non2xx: w.non2xx } : {}), latencyMs: w.lat,
        cpuMsPer10k: per10k(counts['task-clock']), cpuBusy: +((counts['task-clock'] ?? 0) / (seconds * 1000)).toFixed(2),
        syscallsPer10k: per10k(counts.enter), accept4Per10k: per10k(counts.enter_accept4), failedAccept4Per10k: per10k(counts.exit_accept4),
        epollWaitPer10k: per10k(counts.enter_epoll_pwait), readPer10k: per10k(counts.enter_read),
        writePer10k: per10k(counts.enter_write), writevPer10k: per10k(counts.enter_writev),
      };
      if (eld) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        try { result.loop = JSON.parse(fs.readFileSync(eldFile, 'utf8')); } catch {}
      }
      console.log(JSON.stringify(result));
    } finally {
      const exited = new Promise((resolve) => proxy.child.once('exit', resolve));
      try { process.kill(-proxy.child.pid, 'SIGTERM'); } catch {}
      const t = setTimeout(() => { try { process.kill(-proxy.child.pid, 'SIGKILL'); } catch {} }, 10000);
      await exited;
      clearTimeout(t);
    }
  }
} finally {
  const exited = new Promise((resolve) => backends.child.once('exit', resolve));
  try { process.kill(-backends.child.pid, 'SIGQUIT'); } catch {}
  await exited;
  fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
