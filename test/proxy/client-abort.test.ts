import assert from 'node:assert/strict';
import type http from 'node:http';
import net from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import { request } from 'undici';
import { startBackend, startLb, until, type TestBackend } from '../helpers/servers.js';

/**
 * A client that goes away is not the backend's fault: the attempt is aborted (the backend sees
 * its request cut), no failure is counted, the backend stays in rotation.
 */
describe('client hangs up', () => {
  let backend: TestBackend;
  let lb: Awaited<ReturnType<typeof startLb>>;
  /** Exchanges on the backend whose response never finished: closed under it. */
  const cutOnBackend: string[] = [];
  /** Request body bytes the backend received for /upload. */
  let uploadBytes = 0;
  /** How the backend saw the last /upload's body end: 'end' (complete), 'aborted', or '' (not yet). */
  let uploadEnding = '';
  /** Clients of the current test, destroyed after it whatever happened. */
  const clients: net.Socket[] = [];

  function trackCut(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.on('close', () => {
      if (!res.writableFinished) cutOnBackend.push(req.url ?? '');
    });
  }

  before(async () => {
    backend = await startBackend('patient', (req, res) => {
      trackCut(req, res);
      if (req.url === '/wait') {
        // Holds the request: answers only if the connection is still there in 30 s.
        req.resume();
        const timer = setTimeout(() => res.end('late'), 30_000);
        res.on('close', () => clearTimeout(timer));
        return;
      }
      if (req.url === '/upload') {
        req.on('data', (chunk: Buffer) => (uploadBytes += chunk.length));
        req.on('error', () => {});
        req.on('end', () => {
          uploadEnding = 'end';
          res.end(`got ${uploadBytes}`);
        });
        req.on('close', () => {
          if (!req.complete) uploadEnding = 'aborted';
        });
        return;
      }
      if (req.url === '/download') {
        // Streams until the reader goes away, honouring backpressure.
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const chunk = Buffer.alloc(64 * 1024, 0x62);
        const pump = (): void => {
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once('drain', pump);
        };
        pump();
        return;
      }
      req.resume();
      res.end('ok');
    });
    lb = await startLb({ backends: [backend.url] });
  });

  afterEach(() => {
    for (const socket of clients.splice(0)) socket.destroy();
  });

  after(async () => {
    await lb.close();
    await backend.close();
  });

  function connect(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(lb.address.port, '127.0.0.1', () => resolve(socket));
      socket.on('error', reject);
      clients.push(socket);
    });
  }

  /** What every abort must leave behind: nothing in flight, no failure, still available, still serving. */
  async function assertBackendUnharmed(): Promise<void> {
    const state = lb.upstream.backends[0];
    assert.ok(state !== undefined);
    await until(() => state.inFlight === 0, 5000, 'in-flight back to 0');
    assert.equal(state.failuresTotal, 0, 'a client abort is not a backend failure');
    assert.equal(state.available, true);
    const res = await request(`${lb.url}/after`);
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'ok');
    const blamed = lb.logs.filter((l) => Number(l['level']) >= 40 && /failed|\[down\]/.test(String(l['msg'])));
    assert.deepEqual(blamed, [], 'nothing logged against the backend');
  }

  test('while the backend is still working on the request: the backend sees it aborted', async () => {
    const seenBefore = backend.seen.length;
    const client = await connect();
    client.write('GET /wait HTTP/1.1\r\nHost: app.example\r\n\r\n');
    await until(() => backend.seen.length > seenBefore, 5000, 'the request reached the backend');
    assert.equal(lb.upstream.backends[0]?.inFlight, 1);

    client.destroy();
    await until(() => cutOnBackend.includes('/wait'), 5000, 'the backend saw its request aborted');
    await assertBackendUnharmed();
  });

  test('mid-upload (chunked body half sent): the backend sees the upload cut', async () => {
    uploadBytes = 0;
    uploadEnding = '';
    const client = await connect();
    client.write('POST /upload HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n');
    const part = Buffer.alloc(16 * 1024, 0x61);
    for (let i = 0; i < 4; i++) client.write(`${part.length.toString(16)}\r\n${part.toString('latin1')}\r\n`);
    // Everything sent so far is forwarded as it comes, byte for byte, though the body is unfinished.
    await until(() => uploadBytes >= 4 * part.length, 5000, `the backend to receive the ${4 * part.length} bytes sent`);
    assert.equal(uploadEnding, '', 'the body is still open');

    client.destroy();
    await until(() => cutOnBackend.includes('/upload'), 5000, 'the backend saw its upload aborted');
    // Cut, not completed: no last chunk was made up for the client, and nothing was added.
    assert.equal(uploadEnding, 'aborted');
    assert.equal(uploadBytes, 4 * part.length);
    await assertBackendUnharmed();
  });

  test('mid-download (client leaves after the first chunk): the backend sees its response cut', async () => {
    const client = await connect();
    const firstChunk = new Promise<void>((resolve) => client.once('data', () => resolve()));
    client.write('GET /download HTTP/1.1\r\nHost: app.example\r\n\r\n');
    await firstChunk;

    client.destroy();
    await until(() => cutOnBackend.includes('/download'), 5000, 'the backend saw its download aborted');
    await assertBackendUnharmed();
  });

  test('mid-download with undici: aborting the request leaves the backend unharmed', async () => {
    const controller = new AbortController();
    const res = await request(`${lb.url}/download`, { signal: controller.signal });
    assert.equal(res.statusCode, 200);
    const reading = (async () => {
      for await (const _ of res.body) controller.abort();
    })();
    await assert.rejects(reading);
    await until(() => cutOnBackend.filter((u) => u === '/download').length === 2, 5000, 'the backend saw the second download aborted');
    await assertBackendUnharmed();
  });
});
