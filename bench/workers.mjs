#!/usr/bin/env node
// Scaling with worker processes: requests/s of Switchyard with 1 worker and with N, and the ratio.
// Run from the repository root after `npm run build`:
//   node bench/workers.mjs                    # 1 and 2 workers, wrk -c64 -d10s, small GET, keep-alive
//   WORKERS=4 DURATION=20s CONNECTIONS=256 CLOSE=1 node bench/workers.mjs
// CLOSE=1 sends `Connection: close` (a new connection per request: the accept path).
// LB_CPUS / LOAD_CPUS (taskset lists, e.g. 0 and 1) pin Switchyard and wrk+backends apart; compare
// against nginx under the same pinning (../shared/bench) for a ratio beside nginx's 2 ÷ 1 workers.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';

const workers = Number(process.env.WORKERS ?? 2);
const duration = process.env.DURATION ?? '10s';
const connections = Number(process.env.CONNECTIONS ?? 64);
const close = process.env.CLOSE === '1';
const lbCpus = process.env.LB_CPUS;
const loadCpus = process.env.LOAD_CPUS;

const pinned = (cpus, command, args) => (cpus === undefined ? [command, args] : ['taskset', ['-c', cpus, command, ...args]]);

/** Two backends in a child process of their own (pinned with the load generator). */
async function startBackends() {
  const source = `const http=require('node:http');const ports=[];let n=0;for(const name of ['b1','b2']){const s=http.createServer((q,r)=>{r.writeHead(200,{'content-type':'text/plain','x-backend':name});r.end('ok from '+name+'\\n')});s.listen(0,'127.0.0.1',()=>{ports.push(s.address().port);if(++n===2)console.log(ports.join(','))})}`;
  const [cmd, args] = pinned(loadCpus, process.execPath, ['-e', source]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await once(child.stdout, 'data');
  return { child, urls: String(line).trim().split(',').map((p) => `http://127.0.0.1:${p}`) };
}

async function freePort() {
  const server = http.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  return port;
}

async function measure(count, backends) {
  const port = await freePort();
  const [cmd, args] = pinned(lbCpus, process.execPath, ['dist/cli.js', '--workers', String(count), '--port', String(port), '--host', '127.0.0.1', '--backends', backends.join(','), '--no-admin', '--log-level', 'warn']);
  const lb = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  try {
    for (let i = 0; ; i++) {
      const ok = await new Promise((resolve) => http.get(`http://127.0.0.1:${port}/`, (res) => resolve(res.resume() && res.statusCode === 200)).on('error', () => resolve(false)));
      if (ok) break;
      if (i > 100) throw new Error(`Switchyard with ${count} workers did not start`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
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
  const one = await measure(1, backends.urls);
  const many = await measure(workers, backends.urls);
  console.log(`| workers | requests/s | ${close ? 'Connection: close' : 'keep-alive'}, ${connections} connections, ${duration} |`);
  console.log('|---|---|---|');
  console.log(`| 1 | ${one.rps.toFixed(0)} | ${one.errors} |`);
  console.log(`| ${workers} | ${many.rps.toFixed(0)} | ${many.errors} |`);
  console.log(`\nscaling ${workers} ÷ 1 workers: ${(many.rps / one.rps).toFixed(2)}x`);
} finally {
  backends.child.kill();
}
