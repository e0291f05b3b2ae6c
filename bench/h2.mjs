#!/usr/bin/env node
// HTTP/2 small GETs (issue 14): h2load against Switchyard's HTTPS listener (h2 by ALPN) and
// against nginx with `http2` on the same pinned core, both in front of the same two nginx
// HTTP/1.1 backends. Proxy on CPU 0; h2load and the backends on CPU 1. A certificate is made
// with openssl at start. Prints one line per target, shape and round: req/s and failures.
//   npm run build && node bench/h2.mjs [--requests 60000] [--rounds 3]
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startBackends, startProxy } from './measure.mjs';

const args = process.argv.slice(2);
const flag = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const requests = Number(flag('--requests', '60000'));
const rounds = Number(flag('--rounds', '3'));
const shapes = [[1, 100], [32, 10], [32, 1]];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swy-h2-bench-'));
const cert = path.join(dir, 'cert.pem');
const key = path.join(dir, 'key.pem');
spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' });

const pin = (pid, cpu) => spawnSync('taskset', ['-a', '-p', '-c', cpu, String(pid)], { stdio: 'ignore' });
const backends = await startBackends(dir);
pin(backends.child.pid, '1');
for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
  try {
    if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) pin(pid, '1');
  } catch {}
}

function h2load(port, conns, streams) {
  const run = spawnSync('taskset', ['-c', '1', 'h2load', '-n', String(requests), '-c', String(conns), '-m', String(streams), `https://127.0.0.1:${port}/`], { encoding: 'utf8', timeout: 120_000 });
  const rate = /finished in [^,]+, ([\d.]+) req\/s/.exec(run.stdout);
  const done = /requests: .*?(\d+) succeeded, (\d+) failed, (\d+) errored/.exec(run.stdout);
  return { rps: rate ? Math.round(Number(rate[1])) : 0, succeeded: done ? Number(done[1]) : 0, failed: done ? Number(done[2]) + Number(done[3]) : requests };
}

async function startNginx() {
  const port = 18300 + Math.floor(Math.random() * 500);
  const conf = path.join(dir, 'h2-proxy.conf');
  fs.writeFileSync(conf, `daemon off;
worker_processes 1;
pid ${dir}/h2-proxy.pid;
error_log ${dir}/h2-proxy-error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/pbody;
  proxy_temp_path ${dir}/pproxy;
  fastcgi_temp_path ${dir}/pfastcgi;
  uwsgi_temp_path ${dir}/puwsgi;
  scgi_temp_path ${dir}/pscgi;
  keepalive_requests 1000000;
  upstream b { ${backends.urls.map((u) => `server ${u.replace('http://', '')};`).join(' ')} keepalive 1024; }
  server {
    listen 127.0.0.1:${port} ssl http2;
    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    http2_max_concurrent_streams 128;
    location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`);
  const child = spawn('taskset', ['-c', '0', '/usr/sbin/nginx', '-p', dir, '-c', conf], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    if (spawnSync('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code}', `https://127.0.0.1:${port}/`], { encoding: 'utf8' }).stdout === '200') return { child, port };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('nginx did not start');
}

try {
  for (let round = 1; round <= rounds; round++) {
    const lb = await startProxy(`node dist/cli.js --log-level warn --no-admin --tls-cert ${cert} --tls-key ${key}`, [], backends.urls, {}, '0');
    h2load(lb.port, 32, 10);
    for (const [c, m] of shapes) console.log(JSON.stringify({ target: 'switchyard', round, conns: c, streams: m, ...h2load(lb.port, c, m) }));
    lb.child.kill('SIGTERM');
    const nginx = await startNginx();
    h2load(nginx.port, 32, 10);
    for (const [c, m] of shapes) console.log(JSON.stringify({ target: 'nginx', round, conns: c, streams: m, ...h2load(nginx.port, c, m) }));
    nginx.child.kill('SIGQUIT');
    await new Promise((resolve) => nginx.child.once('exit', resolve));
  }
} finally {
  backends.child.kill('SIGTERM');
}
