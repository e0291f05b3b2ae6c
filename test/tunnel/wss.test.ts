import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { cleanupFor } from '../helpers/cleanup.js';
import { closeServer, startLb } from '../helpers/servers.js';
import { makeTestPki, type TestPki } from '../helpers/tls.js';

/**
 * Issue 11: WebSockets over TLS. A `wss://` client reaches Switchyard's HTTPS listener, and the
 * tunnel goes on as `ws://` or `wss://` to the backend; the certificates come from a test CA.
 */

let pki: TestPki;
before(async () => {
  pki = await makeTestPki();
});
after(() => pki.remove());

/** An echo WebSocket server, plain or TLS, on 127.0.0.1:0. */
async function startEcho(tls: boolean): Promise<{ url: string; close(): Promise<void> }> {
  const server = tls ? https.createServer({ cert: pki.local.cert, key: pki.local.key }) : http.createServer();
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (data, binary) => ws.send(data, { binary })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      await closeServer(server);
    },
  };
}

for (const backendTls of [false, true]) {
  test(`wss:// to Switchyard, ${backendTls ? 'wss' : 'ws'}:// to the backend: a message echoes through the tunnel`, async (t) => {
    const cleanup = cleanupFor(t);
    const backend = await startEcho(backendTls);
    cleanup(() => backend.close());
    const lb = await startLb({
      backends: [backend.url],
      tls: { certificates: [{ cert: pki.local.certFile, key: pki.local.keyFile }] },
      ...(backendTls ? { backendTls: { ca: pki.ca.caFile } } : {}),
    });
    cleanup(() => lb.close());
    assert.match(lb.url, /^https:\/\//);

    const ws = new WebSocket(`${lb.url.replace('https:', 'wss:')}/chat`, { ca: pki.ca.caPem });
    cleanup(() => ws.terminate());
    await once(ws, 'open');
    ws.send('hello over tls');
    const [data] = (await once(ws, 'message')) as [Buffer];
    assert.equal(data.toString(), 'hello over tls');
    ws.close();
    await once(ws, 'close');
  });
}
