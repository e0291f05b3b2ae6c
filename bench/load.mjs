#!/usr/bin/env node
// Sends exactly N requests over C keep-alive connections (one undici Client each, one request
// in flight per connection) and exits; prints one JSON line. Unlike wrk's time-based runs, the
// proxy's counts (syscalls, GCs, bytes allocated) can then be divided by a known N.
//   node bench/load.mjs --port P [--requests 10000] [--connections 64] [--path /] [--close]
import { Client } from 'undici';

/** Runs the load; resolves with { requests, failed, bytes, ms }. */
export async function runLoad({ port, requests = 10000, connections = 64, path = '/', close = false, host = '127.0.0.1', method = 'GET', bodyBytes = 0 }) {
  const payload = bodyBytes > 0 ? Buffer.alloc(bodyBytes, 'x') : undefined;
  let next = 0;
  let failed = 0;
  let bytes = 0;
  const statuses = new Map();
  const started = performance.now();
  const origin = `http://${host}:${port}`;
  async function worker() {
    // With `close`, each request gets `Connection: close` (undici's reset) and a new connection.
    const client = new Client(origin, { pipelining: 1, keepAliveTimeout: 30_000 });
    try {
      while (next < requests) {
        next++;
        try {
          const { statusCode, body } = await client.request({ path, method, body: payload, reset: close });
          for await (const chunk of body) bytes += chunk.length;
          statuses.set(statusCode, (statuses.get(statusCode) ?? 0) + 1);
          if (statusCode !== 200) failed++;
        } catch {
          failed++;
        }
      }
    } finally {
      await client.close();
    }
  }
  const workers = [];
  for (let i = 0; i < connections; i++) workers.push(worker());
  await Promise.all(workers);
  return { requests, failed, bytes, ms: Math.round(performance.now() - started), statuses: Object.fromEntries(statuses) };
}

function flag(args, name, fallback) {
  const at = args.indexOf(name);
  return at === -1 ? fallback : args[at + 1];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const port = Number(flag(args, '--port', ''));
  if (!Number.isInteger(port) || port <= 0) {
    console.error('usage: node bench/load.mjs --port P [--requests N] [--connections C] [--path /] [--close]');
    process.exit(2);
  }
  const result = await runLoad({
    port,
    requests: Number(flag(args, '--requests', '10000')),
    connections: Number(flag(args, '--connections', '64')),
    path: flag(args, '--path', '/'),
    close: args.includes('--close'),
  });
  console.log(JSON.stringify(result));
  process.exit(result.failed === 0 ? 0 : 1);
}
