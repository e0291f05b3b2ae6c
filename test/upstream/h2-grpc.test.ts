import assert from 'node:assert/strict';
import { before, describe, test, type TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { echoServiceName, grpcClient, pythonGrpcAvailable, startGrpcServer, startPythonGrpcServer, trailerKey, unaryCall, type EchoReply, type GrpcServer } from '../helpers/grpc.js';

/** One gRPC message frame (uncompressed): flag byte, 4-byte length, the JSON message. */
function frame(message: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(message));
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

function unframe(bytes: Buffer): unknown[] {
  const messages: unknown[] = [];
  for (let at = 0; at + 5 <= bytes.length; ) {
    const length = bytes.readUInt32BE(at + 1);
    messages.push(JSON.parse(bytes.subarray(at + 5, at + 5 + length).toString('utf8')));
    at += 5 + length;
  }
  return messages;
}

let python = false;
before(async () => {
  python = await pythonGrpcAvailable();
});

/** The four kinds of call against `server` with a grpc-js client at `address`. */
async function allFourKinds(address: string): Promise<void> {
  const client = grpcClient(address);
  try {
    const ok = await unaryCall(client, { text: 'hi' }, { 'x-test': 'm1' });
    assert.equal(ok.status.code, grpc.status.OK);
    assert.deepEqual(ok.reply, { text: 'hi', meta: 'm1' });
    assert.deepEqual(ok.status.metadata.get(trailerKey), ['done']);
    const failed = await unaryCall(client, { text: 'x', fail: grpc.status.NOT_FOUND });
    assert.equal(failed.status.code, grpc.status.NOT_FOUND);
    assert.equal(failed.status.details, 'failed with 5');
    const streamed = await new Promise<EchoReply[]>((resolve, reject) => {
      const replies: EchoReply[] = [];
      const call = client.ServerStream({ text: 's', count: 3 }) as grpc.ClientReadableStream<EchoReply>;
      call.on('data', (reply: EchoReply) => replies.push(reply));
      call.on('error', reject);
      call.on('end', () => resolve(replies));
    });
    assert.deepEqual(streamed.map((r) => r.text), ['s 0', 's 1', 's 2']);
    const joined = await new Promise<EchoReply>((resolve, reject) => {
      const call = client.ClientStream((err: grpc.ServiceError | null, reply: EchoReply) => (err === null ? resolve(reply) : reject(err))) as grpc.ClientWritableStream<unknown>;
      for (const text of ['a', 'b', 'c']) call.write({ text });
      call.end();
    });
    assert.equal(joined.text, 'a,b,c');
    const echoed = await new Promise<string[]>((resolve, reject) => {
      const texts: string[] = [];
      const call = client.Bidi() as grpc.ClientDuplexStream<unknown, EchoReply>;
      call.on('data', (reply: EchoReply) => {
        texts.push(reply.text);
        if (texts.length < 3) call.write({ text: `m${texts.length}` });
        else call.end();
      });
      call.on('error', reject);
      call.on('end', () => resolve(texts));
      call.write({ text: 'm0' });
    });
    assert.deepEqual(echoed, ['m0', 'm1', 'm2']);
  } finally {
    client.close();
  }
}

describe('gRPC test peers', () => {
  test('the grpc-js server answers all four kinds of call', async (t) => {
    const cleanup = cleanupFor(t);
    const server = await startGrpcServer();
    cleanup(() => server.close());
    await allFourKinds(server.address);
  });

  test('the python3-grpcio (C-core) server answers all four kinds of call', async (t) => {
    if (!python) return t.skip('python3-grpcio is not installed');
    const cleanup = cleanupFor(t);
    const server = await startPythonGrpcServer();
    cleanup(() => server.close());
    await allFourKinds(server.address);
  });
});

describe('gRPC over an h2c upstream, from an HTTP/1.1 client', () => {
  /** A unary call as HTTP/1.1 POST through Switchyard to `server`; `te` is sent when given. */
  async function unaryOverH1(server: GrpcServer, te: string | undefined, t: TestContext) {
    const cleanup = cleanupFor(t);
    const lb = await startConfigured({ config: localConfig({ grpc: { backends: [`http://${server.address}`], protocol: 'h2c' } }) });
    cleanup(() => lb.close());
    const res = await request(`${lb.url}/${echoServiceName}/Unary`, {
      method: 'POST',
      headers: { 'content-type': 'application/grpc', 'x-test': 'via-h1', ...(te === undefined ? {} : { te }) },
      body: frame({ text: 'through' }),
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, body, trailers: res.trailers };
  }

  test('the strict C-core server gets TE: trailers and its grpc-status arrives as a trailer', async (t) => {
    if (!python) return t.skip('python3-grpcio is not installed');
    const server = await startPythonGrpcServer();
    t.after(() => server.close());
    const got = await unaryOverH1(server, 'trailers', t);
    assert.equal(got.status, 200);
    assert.equal(got.headers['content-type'], 'application/grpc');
    assert.deepEqual(unframe(got.body), [{ text: 'through', meta: 'via-h1' }]);
    assert.equal(got.trailers['grpc-status'], '0');
    assert.equal(got.trailers[trailerKey], 'done');
  });

  test('without TE: trailers from the client the C-core server refuses the call, trailers-only', async (t) => {
    if (!python) return t.skip('python3-grpcio is not installed');
    const server = await startPythonGrpcServer();
    t.after(() => server.close());
    const got = await unaryOverH1(server, undefined, t);
    assert.deepEqual(unframe(got.body), []);
    // A trailers-only response (HEADERS with END_STREAM): its status is in the head on HTTP/1.1.
    assert.equal(got.headers['grpc-status'], String(grpc.status.UNKNOWN));
    assert.equal(got.headers['grpc-message'], 'Missing :te header');
  });

  test('the grpc-js server: message and trailers too', async (t) => {
    const server = await startGrpcServer();
    t.after(() => server.close());
    const got = await unaryOverH1(server, 'trailers', t);
    assert.deepEqual(unframe(got.body), [{ text: 'through', meta: 'via-h1' }]);
    assert.equal(got.trailers['grpc-status'], '0');
  });
});
