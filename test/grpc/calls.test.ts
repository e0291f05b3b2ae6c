import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, test, type TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { cleanupFor } from '../helpers/cleanup.js';
import { echoService, headerKey, pythonGrpcAvailable, startGrpcServer, startPythonGrpcServer, trailerKey, unaryCall, type EchoReply, type GrpcServer } from '../helpers/grpc.js';
import { makeCa, type TestCa } from '../helpers/tls.js';
import { credentialsFor, front } from './support.js';

/**
 * gRPC end to end: a grpc-js client, Switchyard (h2c listener, and TLS with h2 by ALPN), an h2c
 * upstream to a grpc-js server or to the strict C-core server. All four kinds of call keep their
 * messages, request metadata, response header metadata, trailing metadata and status.
 */

let ca: TestCa;
let python = false;
before(async () => {
  ca = await makeCa();
  python = await pythonGrpcAvailable();
});
after(() => ca.remove());

const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');
type Echo = grpc.Client & Record<keyof typeof echoService, (...args: unknown[]) => unknown>;

function meta(values: Record<string, string>): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(values)) metadata.set(key, value);
  return metadata;
}

/** A streaming call's replies, response header metadata and final status. */
function collect(call: grpc.ClientReadableStream<EchoReply>): Promise<{ replies: EchoReply[]; headers: grpc.Metadata | null; status: grpc.StatusObject }> {
  return new Promise((resolve) => {
    const replies: EchoReply[] = [];
    let headers: grpc.Metadata | null = null;
    call.on('metadata', (m: grpc.Metadata) => (headers = m));
    call.on('data', (reply: EchoReply) => replies.push(reply));
    call.on('error', () => {});
    call.on('status', (status: grpc.StatusObject) => resolve({ replies, headers, status }));
  });
}

async function allKinds(client: Echo): Promise<void> {
  const deadline = () => ({ deadline: Date.now() + 10_000 });
  // Unary: message, request metadata at the server, header and trailing metadata back.
  const headers = new Promise<grpc.Metadata>((resolve) => {
    const call = client.Unary({ text: 'hi' }, meta({ 'x-test': 'm1' }), deadline(), () => {}) as grpc.ClientUnaryCall;
    call.on('metadata', resolve);
  });
  const ok = await unaryCall(client as never, { text: 'hi' }, { 'x-test': 'm1' });
  assert.equal(ok.status.code, grpc.status.OK);
  assert.deepEqual(ok.reply, { text: 'hi', meta: 'm1' });
  assert.deepEqual(ok.status.metadata.get(trailerKey), ['done']);
  assert.deepEqual((await headers).get(headerKey), ['hello']);

  // An error status with its message; no message before it, so the server answers trailers-only.
  const failed = await unaryCall(client as never, { text: 'x', fail: grpc.status.NOT_FOUND });
  assert.equal(failed.status.code, grpc.status.NOT_FOUND, failed.status.details);
  assert.equal(failed.status.details, 'failed with 5');
  assert.equal(failed.reply, null);

  const streamed = await collect(client.ServerStream({ text: 's', count: 3 }, meta({ 'x-test': 'm2' }), deadline()) as grpc.ClientReadableStream<EchoReply>);
  assert.equal(streamed.status.code, grpc.status.OK);
  assert.deepEqual(streamed.replies, [0, 1, 2].map((i) => ({ text: `s ${i}`, meta: 'm2' })));
  assert.deepEqual(streamed.status.metadata.get(trailerKey), ['done']);

  const joined = await new Promise<{ err: grpc.ServiceError | null; reply: EchoReply; trailers: grpc.Metadata }>((resolve) => {
    let err: grpc.ServiceError | null = null;
    let reply = { text: '', meta: '' };
    const call = client.ClientStream(meta({ 'x-test': 'm3' }), deadline(), (e: grpc.ServiceError | null, r: EchoReply) => {
      err = e;
      reply = r;
    }) as grpc.ClientWritableStream<unknown>;
    call.on('status', (status: grpc.StatusObject) => resolve({ err, reply, trailers: status.metadata }));
    for (const text of ['a', 'b', 'c']) call.write({ text });
    call.end();
  });
  assert.equal(joined.err, null);
  assert.deepEqual(joined.reply, { text: 'a,b,c', meta: 'm3' });
  assert.deepEqual(joined.trailers.get(trailerKey), ['done']);

  // Bidi, in lockstep: each reply must arrive before the next request is written.
  const echoed = await new Promise<{ texts: string[]; status: grpc.StatusObject }>((resolve) => {
    const texts: string[] = [];
    const call = client.Bidi(meta({ 'x-test': 'm4' }), deadline()) as grpc.ClientDuplexStream<unknown, EchoReply>;
    call.on('data', (reply: EchoReply) => {
      texts.push(`${reply.text}/${reply.meta}`);
      if (texts.length < 3) call.write({ text: `m${texts.length}` });
      else call.end();
    });
    call.on('error', () => {});
    call.on('status', (status: grpc.StatusObject) => resolve({ texts, status }));
    call.write({ text: 'm0' });
  });
  assert.equal(echoed.status.code, grpc.status.OK);
  assert.deepEqual(echoed.texts, ['m0/m4', 'm1/m4', 'm2/m4']);
  assert.deepEqual(echoed.status.metadata.get(trailerKey), ['done']);
}

/** Every kind of call against `server`, through the h2c listener and through the TLS listener. */
async function throughBothListeners(t: TestContext, server: GrpcServer): Promise<void> {
  const cleanup = cleanupFor(t);
  const { h2c, tls } = await front(t, server.address, ca);
  const plain = new EchoClient(h2c, credentialsFor()) as unknown as Echo;
  cleanup(() => plain.close());
  await allKinds(plain);
  const secure = new EchoClient(tls, credentialsFor(ca), { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' }) as unknown as Echo;
  cleanup(() => secure.close());
  await allKinds(secure);
}

describe('gRPC through Switchyard, end to end', () => {
  test('to a grpc-js server: unary, server streaming, client streaming and bidi over h2c and over TLS', async (t) => {
    const server = await startGrpcServer();
    t.after(() => server.close());
    await throughBothListeners(t, server);
  });

  test('to the python3-grpcio (C-core) server: the same calls', async (t) => {
    if (!python) return t.skip('python3-grpcio is not installed');
    const server = await startPythonGrpcServer();
    t.after(() => server.close());
    await throughBothListeners(t, server);
  });

  test('a trailers-only error response reaches an HTTP/2 client as one head with grpc-status', async (t) => {
    const cleanup = cleanupFor(t);
    const server = await startGrpcServer();
    cleanup(() => server.close());
    const { h2c } = await front(t, server.address, ca);
    const session = http2.connect(`http://${h2c}`);
    session.on('error', () => {});
    cleanup(() => session.destroy());
    const body = Buffer.from(JSON.stringify({ text: 'x', fail: grpc.status.NOT_FOUND }));
    const head = Buffer.alloc(5);
    head.writeUInt32BE(body.length, 1);
    const stream = session.request({ ':method': 'POST', ':path': '/switchyard.test.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers' });
    stream.end(Buffer.concat([head, body]));
    const got = await new Promise<{ headers: http2.IncomingHttpHeaders; flags: number; trailers: http2.IncomingHttpHeaders | null; data: number }>((resolve, reject) => {
      let headers: http2.IncomingHttpHeaders = {};
      let flags = 0;
      let trailers: http2.IncomingHttpHeaders | null = null;
      let data = 0;
      const timer = setTimeout(() => reject(new Error('no answer within 10 s')), 10_000);
      stream.on('response', (h, f) => {
        headers = h;
        flags = f;
      });
      stream.on('trailers', (h) => (trailers = h));
      stream.on('data', (chunk: Buffer) => (data += chunk.length));
      stream.on('error', () => {});
      stream.on('close', () => {
        clearTimeout(timer);
        resolve({ headers, flags, trailers, data });
      });
    });
    assert.equal(got.headers[':status'], 200);
    assert.equal(got.headers['grpc-status'], String(grpc.status.NOT_FOUND));
    assert.equal(got.headers['grpc-message'], 'failed%20with%205');
    // One HEADERS frame with END_STREAM: grpc-js reads the status from the head only then.
    assert.equal(got.flags & http2.constants.NGHTTP2_FLAG_END_STREAM, http2.constants.NGHTTP2_FLAG_END_STREAM);
    assert.equal(got.trailers, null);
    assert.equal(got.data, 0);
  });
});
