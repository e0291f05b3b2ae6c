import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { until } from './servers.js';

/**
 * gRPC peers for the tests: a @grpc/grpc-js server and client, and a strict C-core server from
 * Debian's python3-grpcio. The service is written by hand with JSON messages, so no protobuf
 * compiler or proto-loader is needed: `switchyard.test.Echo` with one method of each kind.
 */

/** A request: `text` to echo; `count` messages for ServerStream; `fail` a status code to end with. */
export interface EchoRequest {
  readonly text: string;
  readonly count?: number;
  readonly fail?: number;
}

export interface EchoReply {
  readonly text: string;
  /** The `x-test` metadata the server received, '' for none. */
  readonly meta: string;
}

export const echoServiceName = 'switchyard.test.Echo';

const serialize = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const deserialize = (bytes: Buffer): never => JSON.parse(bytes.toString('utf8')) as never;

function method(name: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<EchoRequest, EchoReply> {
  return {
    path: `/${echoServiceName}/${name}`,
    requestStream,
    responseStream,
    requestSerialize: serialize,
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: deserialize,
  };
}

/** Unary, server streaming, client streaming and bidirectional, each with JSON messages. */
export const echoService = {
  Unary: method('Unary', false, false),
  ServerStream: method('ServerStream', false, true),
  ClientStream: method('ClientStream', true, false),
  Bidi: method('Bidi', true, true),
} satisfies grpc.ServiceDefinition;

const metaOf = (call: { metadata: grpc.Metadata }): string => String(call.metadata.get('x-test')[0] ?? '');

/** The trailing metadata every call of the grpc-js server ends with. */
export const trailerKey = 'x-trailer';

function failure(code: number): Partial<grpc.StatusObject> {
  return { code, details: `failed with ${code}`, metadata: trailer() };
}

/** Response header metadata a successful Unary call sends before its message. */
export const headerKey = 'x-header';

function header(): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set(headerKey, 'hello');
  return metadata;
}

function trailer(): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set(trailerKey, 'done');
  return metadata;
}

const implementation: grpc.UntypedServiceImplementation = {
  Unary(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) {
    const request = call.request;
    if (request.fail !== undefined) return callback(failure(request.fail), null);
    call.sendMetadata(header());
    callback(null, { text: request.text, meta: metaOf(call) }, trailer());
  },
  ServerStream(call: grpc.ServerWritableStream<EchoRequest, EchoReply>) {
    const request = call.request;
    for (let i = 0; i < (request.count ?? 1); i++) call.write({ text: `${request.text} ${i}`, meta: metaOf(call) });
    if (request.fail !== undefined) return call.emit('error', failure(request.fail));
    call.end(trailer());
  },
  ClientStream(call: grpc.ServerReadableStream<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) {
    const texts: string[] = [];
    call.on('data', (request: EchoRequest) => texts.push(request.text));
    call.on('end', () => callback(null, { text: texts.join(','), meta: metaOf(call) }, trailer()));
  },
  Bidi(call: grpc.ServerDuplexStream<EchoRequest, EchoReply>) {
    call.on('data', (request: EchoRequest) => call.write({ text: request.text, meta: metaOf(call) }));
    call.on('end', () => call.end(trailer()));
  },
};

export interface GrpcServer {
  readonly port: number;
  /** `127.0.0.1:PORT`, as gRPC clients take it. */
  readonly address: string;
  close(): Promise<void>;
}

/** A @grpc/grpc-js server (cleartext HTTP/2, h2c) with the Echo service on 127.0.0.1:0. */
export async function startGrpcServer(): Promise<GrpcServer> {
  const server = new grpc.Server();
  server.addService(echoService, implementation);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err === null ? resolve(bound) : reject(err)));
  });
  return {
    port,
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        // Calls still open (a test that failed midway) must not hold the shutdown forever.
        setTimeout(() => server.forceShutdown(), 2000).unref();
      }),
  };
}

const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');

/** A grpc-js client of the Echo service at `address` (host:port), cleartext. Close it with `.close()`. */
export function grpcClient(address: string): grpc.Client & Record<keyof typeof echoService, (...args: unknown[]) => unknown> {
  return new EchoClient(address, grpc.credentials.createInsecure()) as never;
}

/** One unary call; resolves with the reply, its status and the trailing metadata. */
export function unaryCall(client: ReturnType<typeof grpcClient>, request: EchoRequest, meta: Record<string, string> = {}): Promise<{ reply: EchoReply | null; status: grpc.StatusObject }> {
  return new Promise((resolve) => {
    const metadata = new grpc.Metadata();
    for (const [key, value] of Object.entries(meta)) metadata.set(key, value);
    let reply: EchoReply | null = null;
    const call = client.Unary(request, metadata, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, value: EchoReply | undefined) => {
      if (err === null && value !== undefined) reply = value;
    }) as grpc.ClientUnaryCall;
    call.on('status', (status: grpc.StatusObject) => resolve({ reply, status }));
  });
}

/** Whether Debian's python3-grpcio is installed (the C-core server's tests skip without it). */
export async function pythonGrpcAvailable(): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('/usr/bin/python3', ['-c', 'import grpc'], { stdio: 'ignore' });
    child.on('error', () => resolve(false));
    child.on('exit', (code) => resolve(code === 0));
  });
}

// Generic handlers with bytes in and out, so no generated code; JSON as in the grpc-js server.
const pythonServer = `
import json, sys
from concurrent import futures
import grpc

def load(b): return json.loads(b.decode())
def dump(v): return json.dumps(v).encode()
def meta(ctx): return dict(ctx.invocation_metadata()).get('x-test', '')
def done(ctx): ctx.set_trailing_metadata((('${trailerKey}', 'done'),))

def unary(req, ctx):
    if 'fail' in req:
        done(ctx)
        ctx.abort(grpc.StatusCode(next(c for c in grpc.StatusCode if c.value[0] == req['fail'])), 'failed with %d' % req['fail'])
    ctx.send_initial_metadata((('x-header', 'hello'),))
    done(ctx)
    return {'text': req['text'], 'meta': meta(ctx)}

def server_stream(req, ctx):
    for i in range(req.get('count', 1)):
        yield {'text': '%s %d' % (req['text'], i), 'meta': meta(ctx)}
    done(ctx)

def client_stream(reqs, ctx):
    texts = [r['text'] for r in reqs]
    done(ctx)
    return {'text': ','.join(texts), 'meta': meta(ctx)}

def bidi(reqs, ctx):
    for r in reqs:
        yield {'text': r['text'], 'meta': meta(ctx)}
    done(ctx)

kw = dict(request_deserializer=load, response_serializer=dump)
handler = grpc.method_handlers_generic_handler('${echoServiceName}', {
    'Unary': grpc.unary_unary_rpc_method_handler(unary, **kw),
    'ServerStream': grpc.unary_stream_rpc_method_handler(server_stream, **kw),
    'ClientStream': grpc.stream_unary_rpc_method_handler(client_stream, **kw),
    'Bidi': grpc.stream_stream_rpc_method_handler(bidi, **kw),
})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
server.add_generic_rpc_handlers((handler,))
port = server.add_insecure_port('127.0.0.1:0')
server.start()
print('PORT %d' % port, flush=True)
sys.stdin.read()
server.stop(0)
`;

/**
 * The Echo service on a C-core server (python3-grpcio), h2c on 127.0.0.1:0. Strict where grpc-js
 * is lenient: it refuses a request without `TE: trailers`. It exits when its stdin closes;
 * close() does that, then kills it by pid if it lingers.
 */
export async function startPythonGrpcServer(): Promise<GrpcServer> {
  const dir = await mkdtemp(join(tmpdir(), 'swy-grpc-'));
  const script = join(dir, 'echo_server.py');
  await writeFile(script, pythonServer);
  const child = spawn('/usr/bin/python3', [script], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (out += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (err += text));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    child.stdin.end();
    const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(killer);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await until(() => /PORT \d+/.test(out) || child.exitCode !== null, 15_000, 'the python gRPC server to print its port');
  } catch (error) {
    await stop();
    throw error;
  }
  const match = /PORT (\d+)/.exec(out);
  if (match === null) {
    await stop();
    throw new Error(`the python gRPC server exited: ${err}`);
  }
  const port = Number(match[1]);
  return { port, address: `127.0.0.1:${port}`, close: stop };
}
