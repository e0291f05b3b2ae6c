// WebSocket tunnel figures (issue 11): throughput through one tunnel beside the same client
// talking to the backend directly, and the memory one open idle tunnel costs Switchyard.
// Run after `npm run build`: node bench/tunnel.mjs   (env: BENCH_MIB, BENCH_IDLE_TUNNELS)
// Switchyard runs in a child process (so its memory is its own); the ws echo backend and the
// clients run here. Everything listens on 127.0.0.1 and stops by itself.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { WebSocket, WebSocketServer } from 'ws';

const MiB = 1024 * 1024;
const totalMiB = Number(process.env.BENCH_MIB ?? 1024);
const idleTunnels = Number(process.env.BENCH_IDLE_TUNNELS ?? 2000);
const deadlineMs = 300_000;
/** Messages sent but not yet written to the socket (one way) or not yet echoed (echo). */
const window = 8;

if (process.argv[2] === 'switchyard') await runSwitchyard(process.argv[3]);
else await main();

/** The child: Switchyard in front of the backend; answers `measure` with its memory after gc. */
async function runSwitchyard(backendUrl) {
  const { start } = await import(new URL('../dist/index.js', import.meta.url).href);
  const lb = await start({ port: 0, host: '127.0.0.1', backends: [backendUrl], admin: false, log: { level: 'warn', format: 'json' } });
  process.on('message', async (message) => {
    if (message === 'measure') {
      for (let i = 0; i < 3; i++) globalThis.gc();
      const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
      process.send({ rss, heapUsed, external, arrayBuffers });
    } else if (message === 'close') {
      await lb.close();
      process.exit(0);
    }
  });
  process.send({ url: lb.url });
}

async function main() {
  const guard = setTimeout(() => {
    console.error(`bench/tunnel.mjs: gave up after ${deadlineMs / 1000} s`);
    process.exit(1);
  }, deadlineMs);
  guard.unref();
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 2 * MiB });
  await once(wss, 'listening');
  // The backend: echoes binary messages; a text message `count N` is answered once N bytes arrived.
  wss.on('connection', (ws) => {
    let received = 0;
    let expect = -1;
    ws.on('message', (data, binary) => {
      if (!binary) {
        expect = Number(String(data).slice(6));
      } else if (ws.protocol === 'echo') ws.send(data);
      else received += data.length;
      if (expect >= 0 && received >= expect) {
        ws.send('done');
        expect = -1;
      }
    });
  });
  const backendUrl = `ws://127.0.0.1:${wss.address().port}`;
  const child = fork(new URL(import.meta.url).pathname, ['switchyard', backendUrl.replace('ws:', 'http:')], { execArgv: ['--expose-gc'] });
  const ask = async (message) => {
    child.send(message);
    const [reply] = await once(child, 'message');
    return reply;
  };
  try {
    const [{ url }] = await once(child, 'message');
    const lbUrl = url.replace('http:', 'ws:');
    console.log(`node ${process.version}, ${totalMiB} MiB in 1 MiB messages; the machine may be shared: figures are indicative`);
    for (const [name, target] of [['direct', backendUrl], ['through Switchyard', lbUrl]]) {
      const oneWay = await oneWayMBps(target);
      const echo = await echoMBps(target);
      console.log(`${name.padEnd(19)} one way ${oneWay.toFixed(0).padStart(5)} MB/s   echo ${echo.toFixed(0).padStart(5)} MB/s each way`);
    }
    await idleCost(lbUrl, ask);
  } finally {
    child.send('close');
    await Promise.race([once(child, 'exit'), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    if (child.exitCode === null) child.kill();
    for (const ws of wss.clients) ws.terminate();
    wss.close();
    clearTimeout(guard);
  }
}

function open(url, protocol) {
  const ws = new WebSocket(url, protocol, { perMessageDeflate: false, maxPayload: 2 * MiB });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function closeWs(ws) {
  ws.close();
  if (ws.readyState !== WebSocket.CLOSED) await once(ws, 'close');
}

/** totalMiB from client to backend, at most `window` messages not yet written; MB/s (10^6 bytes). */
async function oneWayMBps(url) {
  const ws = await open(url, 'count');
  const message = Buffer.alloc(MiB, 7);
  const done = once(ws, 'message');
  const startedMs = performance.now();
  ws.send(`count ${totalMiB * MiB}`);
  await new Promise((resolve, reject) => {
    let sent = 0;
    let pending = 0;
    const pump = () => {
      while (pending < window && sent < totalMiB) {
        sent++;
        pending++;
        ws.send(message, { binary: true }, (err) => {
          if (err) return reject(err);
          pending--;
          if (sent === totalMiB && pending === 0) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  await done;
  const seconds = (performance.now() - startedMs) / 1000;
  await closeWs(ws);
  return (totalMiB * MiB) / 1e6 / seconds;
}

/** totalMiB / 2 each way, echoed by the backend, at most `window` messages awaiting their echo. */
async function echoMBps(url) {
  const ws = await open(url, 'echo');
  const message = Buffer.alloc(MiB, 9);
  const count = totalMiB / 2;
  const startedMs = performance.now();
  await new Promise((resolve, reject) => {
    let sent = 0;
    let echoed = 0;
    ws.on('error', reject);
    ws.on('message', () => {
      echoed++;
      if (echoed === count) resolve();
      else if (sent < count) {
        sent++;
        ws.send(message);
      }
    });
    for (; sent < Math.min(window, count); sent++) ws.send(message);
  });
  const seconds = (performance.now() - startedMs) / 1000;
  await closeWs(ws);
  return (count * MiB) / 1e6 / seconds;
}

/** Switchyard's memory before and after `idleTunnels` idle tunnels, per tunnel. */
async function idleCost(lbUrl, ask) {
  // Warm-up: the code paths of a tunnel run once before the baseline.
  const warm = [];
  for (let i = 0; i < 50; i++) warm.push(await open(lbUrl, 'count'));
  await Promise.all(warm.map(closeWs));
  const before = await ask('measure');
  const tunnels = [];
  for (let i = 0; i < idleTunnels; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(i + 50, idleTunnels); j++) batch.push(open(lbUrl, 'count'));
    tunnels.push(...(await Promise.all(batch)));
  }
  const after = await ask('measure');
  await Promise.all(tunnels.map(closeWs));
  const per = (key) => ((after[key] - before[key]) / idleTunnels / 1024).toFixed(1);
  const mib = (bytes) => (bytes / MiB).toFixed(1);
  console.log(`${idleTunnels} idle tunnels: Switchyard RSS ${mib(before.rss)} -> ${mib(after.rss)} MiB, heap used ${mib(before.heapUsed)} -> ${mib(after.heapUsed)} MiB`);
  console.log(`per idle tunnel: RSS ${per('rss')} KiB, heap ${per('heapUsed')} KiB, external ${per('external')} KiB (after gc)`);
}
