#!/usr/bin/env node
// Scaling with worker processes: requests/s of Switchyard with 1 worker and with N, and the ratio,
// beside nginx with 1 and N worker processes on the same two nginx backends and the same load.
// Run from the repository root after `npm run build`:
//   node bench/workers.mjs                    # 1 and 2 workers, wrk -c64 -d10s, small GET, keep-alive
//   WORKERS=4 DURATION=20s CONNECTIONS=256 CLOSE=1 node bench/workers.mjs
// CLOSE=1 sends `Connection: close` (a new connection per request: the accept path).
// LB_CPUS / LOAD_CPUS (taskset lists, e.g. 0 and 1) pin Switchyard and wrk+backends apart; compare
// against nginx under the same pinning (../shared/bench) for a ratio beside nginx's 2 ÷ 1 workers.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

const workers = Number(process.env.WORKERS ?? 2);
const duration = process.env.DURATION ?? '10s';
const connections = Number(process.env.CONNECTIONS ?? 64);
const close = process.env.CLOSE === '1';
const lbCpus = process.env.LB_CPUS;
const loadCpus = process.env.LOAD_CPUS;

const pinned = (cpus, command, args) => (cpus === undefined ? [command, args] : ['taskset', ['-c', cpus, command, ...args]]);

/** Two nginx backends (one worker each, pinned with the load generator), as in ../shared/bench. */
async function startBackends() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'swy-workers-'));
  const ports = [await freePort(), await freePort()];
  const conf = `worker_processes 1; daemon off; pid ${dir}/b.pid; error_log ${dir}/b.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
${ports.map((p, i) => `  server { listen 127.0.0.1:${p} backlog=4096; location / { add_header X-Backend b${i + 1}; return 200 "ok from b${i + 1}\\n"; } }`).join('\n')}
}`;
  writeFileSync(path.join(dir, 'b.conf'), conf);
  const [cmd, args] = pinned(loadCpus, 'nginx', ['-p', dir, '-c', path.join(dir, 'b.conf')]);
  const child = spawn(cmd, args, { stdio: 'inherit' });
  await waitFor(ports[0]);
  return { child, dir, urls: ports.map((p) => `http://127.0.0.1:${p}`) };
}

/** nginx as the proxy, with `count` workers and upstream keep-alive, for the ratio beside Switchyard's. */
function nginxProxy(count, port, backends, dir) {
  const conf = `worker_processes ${count}; daemon off; pid ${dir}/p${count}.pid; error_log ${dir}/p.err warn;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 1000000;
  upstream b { ${backends.map((u) => `server ${u.slice('http://'.length)};`).join(' ')} keepalive 1024; }
  server { listen 127.0.0.1:${port} backlog=4096; location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}`;
  writeFileSync(path.join(dir, `p${count}.conf`), conf);
  return pinned(lbCpus, 'nginx', ['-p', dir, '-c', path.join(dir, `p${count}.conf`)]);
}

async function waitFor(port, what = 'the backends') {
  for (let i = 0; ; i++) {
    const ok = await new Promise((resolve) => http.get(`http://127.0.0.1:${port}/`, (res) => resolve(res.resume() && res.statusCode === 200)).on('error', () => resolve(false)));
    if (ok) return;
    if (i > 100) throw new Error(`${what} did not start`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function freePort() {
  const server = http.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  return port;
}

async function measure(target, count, backends) {
  const port = await freePort();
  const [cmd, args] =
    target === 'nginx'
      ? nginxProxy(count, port, backends.urls, backends.dir)
      : pinned(lbCpus, process.execPath, ['dist/cli.js', '--workers', String(count), '--port', String(port), '--host', '127.0.0.1', '--backends', backends.urls.join(','), '--no-admin', '--log-level', 'warn']);
  const lb = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  try {
    await waitFor(port, `${target} with ${count} workers`);
    // Warm-up (the JIT needs a few seconds), then the measured run.
    execFileSync('wrk', ['-t2', `-c${connections}`, '-d3s', `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
    const wrkArgs = ['-t2', `-c${connections}`, `-d${duration}`, ...(close ? ['-H', 'Connection: close'] : []), `http://127.0.0.1:${port}/`];
    const [wcmd, wargs] = pinned(loadCpus, 'wrk', wrkArgs);
    const out = execFileSync(wcmd, wargs, { encoding: 'utf8' });
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
    const errors = /Socket errors:.*/.exec(out)?.[0] ?? 'Socket errors: none';
    return { rps, errors };
  } finally {
    lb.kill('SIGTERM');
    await once(lb, 'exit');
  }
}

const backends = await startBackends();
try {
  console.log(`| proxy | 1 worker req/s | ${workers} workers req/s | ${workers} ÷ 1 | ${close ? 'Connection: close' : 'keep-alive'}, ${connections} connections, ${duration} |`);
  console.log('|---|---|---|---|---|');
  for (const target of ['switchyard', 'nginx']) {
    const one = await measure(target, 1, backends);
    const many = await measure(target, workers, backends);
    console.log(`| ${target} | ${one.rps.toFixed(0)} | ${many.rps.toFixed(0)} | ${(many.rps / one.rps).toFixed(2)}x | ${one.errors}; ${many.errors} |`);
  }
} finally {
  backends.child.kill();
  rmSync(backends.dir, { recursive: true, force: true });
}
