#!/usr/bin/env node
// Counts per request that do not depend on a quiet CPU: syscalls (strace -c -f), GCs and bytes
// allocated (--trace-gc-nvp), CPU time (/proc), a CPU profile and an allocation sample of the
// measured window only (inspector). Starts two nginx backends and the proxy, warms up, then
// sends exactly --requests requests with bench/load.mjs and prints a JSON line per metric.
//
//   node bench/measure.mjs [--what gc,syscalls,cpu,heap,time] [--scenario a|b|c|d|e]
//     [--requests 10000] [--warmup 20000] [--node-flags "--max-semi-space-size=16"]
//     [--proxy "node dist/cli.js --log-level warn"] [--out DIR]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { runLoad } from './load.mjs';

const scenarios = {
  a: { path: '/', connections: 64, close: false },
  b: { path: '/', connections: 1000, close: false },
  c: { path: '/1m', connections: 16, close: false },
  d: { path: '/upload', connections: 64, close: false, method: 'POST', bodyBytes: 64 * 1024 },
  e: { path: '/', connections: 64, close: true },
};

function flag(args, name, fallback) {
  const at = args.indexOf(name);
  return at === -1 ? fallback : args[at + 1];
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, child, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`process exited (${child.exitCode}) before listening on ${port}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on ${port} after ${timeoutMs} ms`);
}

const started = [];
/** Spawns in its own process group; stopGroup() ends it by that id. */
function start(cmd, args, options = {}) {
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...options });
  started.push(child);
  return child;
}

async function stopGroup(child, signal = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try { process.kill(-child.pid, signal); } catch { return; }
  const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch {} }, 15000);
  await exited;
  clearTimeout(timer);
}

process.on('exit', () => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) try { process.kill(-child.pid, 'SIGKILL'); } catch {}
});
// A signal's default action skips 'exit': stopped by Ctrl-C or a timeout, the backends and the
// proxy it started would outlive it.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1)));

/** Two nginx backends shaped like the shared bench's: `ok from bN`, /64k and /1m files, POST /upload. */
export async function startBackends(dir) {
  const www = path.join(dir, 'www');
  fs.mkdirSync(www, { recursive: true });
  // nginx's workers may run as another user: they must read the files.
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(www, 0o755);
  fs.writeFileSync(path.join(www, '64k'), Buffer.alloc(64 * 1024, 'x'), { mode: 0o644 });
  fs.writeFileSync(path.join(www, '1m'), Buffer.alloc(1024 * 1024, 'y'), { mode: 0o644 });
  const ports = [await freePort(), await freePort()];
  const servers = ports.map((port, i) => `
  server {
    listen 127.0.0.1:${port} backlog=4096;
    root ${www};
    add_header X-Backend b${i + 1};
    location = / { default_type text/plain; return 200 "ok from b${i + 1}\\n"; }
    location = /upload { default_type text/plain; return 200 "ok from b${i + 1} len=$content_length\\n"; }
    location = /64k { }
    location = /1m { }
  }`).join('\n');
  const conf = `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  # As the shared bench's backends: files by sendfile, 64 KiB POST bodies kept in memory.
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  client_max_body_size 4m;
  client_body_buffer_size 128k;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${servers}
}
`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const child = start('/usr/sbin/nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')]);
  for (const port of ports) await waitForPort(port, child);
  return { child, urls: ports.map((p) => `http://127.0.0.1:${p}`) };
}

/** Starts the proxy: `proxyCmd` (a shell-free word list) + `--port P --backends …`. */
export async function startProxy(proxyCmd, nodeFlags, backends, extraEnv = {}, pinCpu = null) {
  const port = await freePort();
  const words = proxyCmd.split(/\s+/).filter(Boolean);
  const [cmd, ...rest] = words;
  const args = [...(cmd === 'node' ? [process.execPath, ...nodeFlags] : [cmd]), ...rest, '--port', String(port), '--backends', backends.join(',')];
  // Pinned like the shared bench pins it: every thread of the proxy on one CPU.
  const argv = pinCpu === null ? args : ['taskset', '-c', pinCpu, ...args];
  const child = start(argv[0], argv.slice(1), { env: { ...process.env, ...extraEnv } });
  const out = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (d) => { out.stdout += d; });
  child.stderr.setEncoding('utf8').on('data', (d) => { out.stderr += d; });
  await waitForPort(port, child);
  return { child, port, out };
}

/** Context switches of every thread of the process so far. */
function contextSwitches(pid) {
  let n = 0;
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8');
      for (const m of status.matchAll(/ctxt_switches:\s+(\d+)/g)) n += Number(m[1]);
    } catch {}
  }
  return n;
}

function cpuTicks(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of the whole line (12 and 13 after the name).
  return Number(fields[11]) + Number(fields[12]);
}

/** A minimal inspector session over the proxy's --inspect WebSocket. */
export async function inspector(out) {
  const deadline = Date.now() + 10000;
  let match = null;
  while ((match = /ws:\/\/[^\s]+/.exec(out.stderr)) === null) {
    if (Date.now() > deadline) throw new Error('no inspector URL on stderr');
    await sleep(50);
  }
  const ws = new WebSocket(match[0], { perMessageDeflate: false, maxPayload: 1 << 30 });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  let id = 0;
  const pending = new Map();
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    if (msg.id !== undefined && pending.has(msg.id)) {
      pending.get(msg.id)(msg);
      pending.delete(msg.id);
    }
  });
  return {
    send(method, params = {}) {
      return new Promise((resolve, reject) => {
        const n = ++id;
        pending.set(n, (msg) => (msg.error ? reject(new Error(`${method}: ${msg.error.message}`)) : resolve(msg.result)));
        ws.send(JSON.stringify({ id: n, method, params }));
      });
    },
    close() { ws.close(); },
  };
}

function parseStrace(text) {
  const calls = {};
  let total = 0;
  let errors = 0;
  for (const line of text.split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+)?\s*(\w+)\s*$/.exec(line);
    if (m === null || m[3] === 'total') continue;
    const n = Number(m[1]);
    calls[m[3]] = { calls: n, errors: Number(m[2] ?? 0) };
    total += n;
    errors += Number(m[2] ?? 0);
  }
  return { total, errors, calls };
}

const tracedCalls = ['read', 'write', 'writev', 'accept4', 'epoll_wait', 'epoll_pwait', 'futex', 'close', 'epoll_ctl', 'setsockopt', 'getpeername', 'shutdown'];

/** perf stat -x, lines: value,unit,event,… */
function perfCounts(text, per) {
  const out = { perSyscallPer10k: {} };
  for (const line of text.split('\n')) {
    const [value, , event] = line.split(',');
    if (event === undefined || !/^\d+$/.test(value)) continue;
    const n = Math.round(Number(value) * per);
    if (event === 'raw_syscalls:sys_enter') out.syscallsPer10k = n;
    else if (event === 'syscalls:sys_exit_accept4') out.failedAccept4Per10k = n;
    else out.perSyscallPer10k[event.replace('syscalls:sys_enter_', '')] = n;
  }
  return out;
}

/** Sizes of reads and writes from `perf record` of the exit tracepoints (bytes, from ret). */
async function ioSizes(dataFile, requests) {
  const script = spawn('perf', ['script', '-i', dataFile, '-F', 'event,trace'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let text = '';
  script.stdout.setEncoding('utf8').on('data', (d) => { text += d; });
  await new Promise((resolve) => script.once('exit', resolve));
  const by = {};
  for (const line of text.split('\n')) {
    const m = /sys_(exit|enter)_(\w+):.*?(?:0x([0-9a-f]+)$|vlen: 0x([0-9a-f]+))/.exec(line.trim());
    if (m === null) continue;
    const key = m[1] === 'enter' ? 'writev_buffers' : m[2];
    const value = parseInt(m[3] ?? m[4], 16);
    (by[key] ??= []).push(value > 2 ** 63 ? -1 : value);
  }
  const summary = {};
  for (const [key, values] of Object.entries(by)) {
    const ok = values.filter((v) => v >= 0).sort((a, b) => a - b);
    const q = (f) => ok[Math.min(ok.length - 1, Math.floor(f * ok.length))] ?? 0;
    const sum = ok.reduce((a, b) => a + b, 0);
    summary[key] = { perRequest: +(values.length / requests).toFixed(2), failed: values.length - ok.length, p10: q(0.1), p50: q(0.5), p90: q(0.9), max: ok.at(-1) ?? 0, mean: Math.round(sum / Math.max(1, ok.length)) };
  }
  return { io: summary };
}

function gcSummary(text) {
  let scavenges = 0;
  let markCompacts = 0;
  let allocated = 0;
  let pauseMs = 0;
  for (const line of text.split('\n')) {
    const gc = /\bgc=(\w+)/.exec(line);
    if (gc === null) continue;
    if (gc[1] === 's') scavenges++;
    else markCompacts++;
    const a = /\ballocated=(\d+)/.exec(line);
    if (a !== null) allocated += Number(a[1]);
    const p = /\bpause=([\d.]+)/.exec(line);
    if (p !== null) pauseMs += Number(p[1]);
  }
  return { scavenges, markCompacts, allocated, pauseMs };
}

async function main() {
  const args = process.argv.slice(2);
  const what = flag(args, '--what', 'gc,syscalls,time').split(',');
  const scenarioName = flag(args, '--scenario', 'a');
  const scenario = scenarios[scenarioName];
  if (scenario === undefined) throw new Error(`unknown scenario ${scenarioName}`);
  const requests = Number(flag(args, '--requests', '10000'));
  const warmup = Number(flag(args, '--warmup', String(scenarioName === 'c' ? 1000 : scenarioName === 'd' ? 5000 : 20000)));
  const nodeFlags = flag(args, '--node-flags', '').split(/\s+/).filter(Boolean);
  const proxyCmd = flag(args, '--proxy', 'node dist/cli.js --log-level warn --admin 127.0.0.1:0');
  const outDir = flag(args, '--out', fs.mkdtempSync(path.join(os.tmpdir(), 'swy-measure-')));
  const label = flag(args, '--label', proxyCmd);
  const pinCpu = flag(args, '--pin', null);
  fs.mkdirSync(outDir, { recursive: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swy-backends-'));
  const backends = await startBackends(dir);
  const per = 10000 / requests;
  const load = { ...scenario, requests };
  try {
    for (const metric of what) {
      const flags = [...nodeFlags];
      if (metric === 'gc') flags.push('--trace-gc-nvp');
      if (metric === 'cpu' || metric === 'heap') flags.push('--inspect=127.0.0.1:0');
      const proxy = await startProxy(proxyCmd, flags, backends.urls, {}, pinCpu);
      const result = { label, metric, scenario: scenarioName, requests };
      try {
        if (warmup > 0) await runLoad({ ...load, port: proxy.port, requests: warmup });
        let session = null;
        let strace = null;
        const straceFile = path.join(outDir, `strace-${scenarioName}.txt`);
        if (metric === 'cpu' || metric === 'heap') {
          session = await inspector(proxy.out);
          if (metric === 'cpu') {
            await session.send('Profiler.enable');
            await session.send('Profiler.setSamplingInterval', { interval: 100 });
            await session.send('Profiler.start');
          } else {
            await session.send('HeapProfiler.enable');
            await session.send('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
          }
        }
        let perf = null;
        const perfFile = path.join(outDir, `perf-${metric}-${scenarioName}.txt`);
        if (metric === 'perfsys' || metric === 'sizes') {
          // Kernel tracepoints: exact counts without strace's slow-down (which changes batching).
          const events = metric === 'perfsys'
            ? ['-e', 'raw_syscalls:sys_enter', ...tracedCalls.flatMap((c) => ['-e', `syscalls:sys_enter_${c}`]), '-e', 'syscalls:sys_exit_accept4', '--filter', 'ret < 0']
            : ['-e', 'syscalls:sys_exit_read', '-e', 'syscalls:sys_exit_write', '-e', 'syscalls:sys_exit_writev', '-e', 'syscalls:sys_enter_writev'];
          const perfArgs = metric === 'perfsys' ? ['stat', '-x', ',', '-o', perfFile, ...events, '-p', String(proxy.child.pid)] : ['record', '-q', '-o', `${perfFile}.data`, ...events, '-p', String(proxy.child.pid)];
          perf = spawn('perf', perfArgs, { stdio: ['ignore', 'ignore', 'pipe'] });
          await sleep(1000);
        }
        if (metric === 'syscalls') {
          strace = spawn('strace', ['-c', '-f', '-o', straceFile, '-p', String(proxy.child.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
          let err = '';
          strace.stderr.setEncoding('utf8').on('data', (d) => { err += d; });
          const deadline = Date.now() + 10000;
          while (!/attached/.test(err) && Date.now() < deadline) await sleep(20);
          await sleep(300);
        }
        await sleep(200);
        const gcBefore = proxy.out.stdout.length;
        const ticksBefore = cpuTicks(proxy.child.pid);
        const switchesBefore = contextSwitches(proxy.child.pid);
        const run = await runLoad({ ...load, port: proxy.port });
        const ticks = cpuTicks(proxy.child.pid) - ticksBefore;
        const switches = contextSwitches(proxy.child.pid) - switchesBefore;
        await sleep(300);
        result.load = run;
        if (metric === 'time') {
          result.cpuMsPer10k = Math.round(ticks * 10 * per);
          result.contextSwitchesPer10k = Math.round(switches * per);
          result.peakRssMiB = Math.round(Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${proxy.child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024);
          result.wallMs = run.ms;
        }
        if (metric === 'gc') {
          const gc = gcSummary(proxy.out.stdout.slice(gcBefore));
          result.scavengesPer10k = +(gc.scavenges * per).toFixed(1);
          result.markCompactsPer10k = +(gc.markCompacts * per).toFixed(1);
          result.allocatedBytesPerRequest = Math.round(gc.allocated / requests);
          result.gcPauseMsPer10k = +(gc.pauseMs * per).toFixed(1);
        }
        if (perf !== null) {
          const done = new Promise((resolve) => perf.once('exit', resolve));
          process.kill(perf.pid, 'SIGINT');
          await done;
          if (metric === 'perfsys') Object.assign(result, perfCounts(fs.readFileSync(perfFile, 'utf8'), per));
          else Object.assign(result, await ioSizes(`${perfFile}.data`, requests));
        }
        if (strace !== null) {
          const done = new Promise((resolve) => strace.once('exit', resolve));
          process.kill(strace.pid, 'SIGINT');
          await done;
          const s = parseStrace(fs.readFileSync(straceFile, 'utf8'));
          result.syscallsPer10k = Math.round(s.total * per);
          result.failedPer10k = Math.round(s.errors * per);
          result.top = Object.fromEntries(Object.entries(s.calls).sort((x, y) => y[1].calls - x[1].calls).slice(0, 12).map(([k, v]) => [k, v.errors > 0 ? `${Math.round(v.calls * per)} (${Math.round(v.errors * per)} failed)` : Math.round(v.calls * per)]));
          result.file = straceFile;
        }
        if (session !== null) {
          if (metric === 'cpu') {
            const { profile } = await session.send('Profiler.stop');
            const file = path.join(outDir, `window-${scenarioName}.cpuprofile`);
            fs.writeFileSync(file, JSON.stringify(profile));
            result.file = file;
          } else {
            const { profile } = await session.send('HeapProfiler.stopSampling');
            const file = path.join(outDir, `window-${scenarioName}.heapprofile`);
            fs.writeFileSync(file, JSON.stringify(profile));
            let bytes = 0;
            for (const s of profile.samples) bytes += s.size;
            result.sampledBytesPerRequest = Math.round(bytes / requests);
            result.file = file;
          }
          session.close();
        }
      } finally {
        await stopGroup(proxy.child);
        // The proxy's own output (GC traces included), for a closer look.
        fs.writeFileSync(path.join(outDir, `proxy-${metric}-${scenarioName}.log`), proxy.out.stdout + proxy.out.stderr);
      }
      console.log(JSON.stringify(result));
    }
  } finally {
    await stopGroup(backends.child, 'SIGQUIT');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err) => {
    console.error(err.stack ?? String(err));
    process.exitCode = 1;
  });
}
