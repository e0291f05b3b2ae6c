#!/usr/bin/env node
// gRPC unary calls per second (issue 14): a @grpc/grpc-js client sends `--calls` unary calls,
// `--concurrency` at a time over one channel, to a grpc-js echo server directly and through
// Switchyard (an h2c listener, the server as an h2c backend). Switchyard runs as a child process
// pinned to CPU 0 with taskset; client and server share CPU 1. Prints one JSON line per target.
//   npm run build && node bench/grpc-unary.mjs [--calls 20000] [--concurrency 64]
import { spawn } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';

const args = process.argv.slice(2);
const flag = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const calls = Number(flag('--calls', '20000'));
const concurrency = Number(flag('--concurrency', '64'));

const codec = { serialize: (v) => Buffer.from(JSON.stringify(v)), deserialize: (b) => JSON.parse(b.toString('utf8')) };
const unary = { path: '/bench.Echo/Unary', requestStream: false, responseStream: false, requestSerialize: codec.serialize, requestDeserialize: codec.deserialize, responseSerialize: codec.serialize, responseDeserialize: codec.deserialize };

const server = new grpc.Server();
server.addService({ Unary: unary }, { Unary: (call, callback) => callback(null, { text: call.request.text }) });
const serverPort = await new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));

async function measure(target) {
  const Client = grpc.makeGenericClientConstructor({ Unary: unary }, 'Echo');
  const client = new Client(target, grpc.credentials.createInsecure());
  const call = () => new Promise((resolve, reject) => client.Unary({ text: 'hello' }, { deadline: Date.now() + 10_000 }, (err, reply) => (err ? reject(err) : resolve(reply))));
  for (let i = 0; i < 200; i++) await call();
  let sent = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (sent < calls) {
      sent++;
      await call().catch(() => failed++);
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  client.close();
  return { callsPerSecond: Math.round(calls / seconds), failed };
}

const direct = await measure(`127.0.0.1:${serverPort}`);
console.log(JSON.stringify({ target: 'direct', calls, concurrency, ...direct }));

const lb = spawn('taskset', ['-c', '0', process.execPath, 'dist/cli.js', '--host', '127.0.0.1', '--port', '0', '--h2c', '--backend-protocol', 'h2c', '--backends', `http://127.0.0.1:${serverPort}`, '--log-format', 'json', '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'inherit'] });
const lbPort = await new Promise((resolve, reject) => {
  let out = '';
  lb.stdout.setEncoding('utf8').on('data', (d) => {
    out += d;
    const m = /"port":(\d+)[^\n]*Load Balancer started/.exec(out);
    if (m) resolve(Number(m[1]));
  });
  lb.once('exit', (code) => reject(new Error(`switchyard exited ${code}: ${out}`)));
  setTimeout(() => reject(new Error('switchyard did not start within 10 s')), 10_000).unref();
});
lb.stdout.resume();
try {
  const through = await measure(`127.0.0.1:${lbPort}`);
  console.log(JSON.stringify({ target: 'switchyard', calls, concurrency, ...through }));
} finally {
  lb.kill('SIGTERM');
  server.forceShutdown();
}
