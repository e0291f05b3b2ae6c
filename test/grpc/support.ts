import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import type { TestCa } from '../helpers/tls.js';
import type { ConfigInput } from '../../src/index.js';

/**
 * What the end-to-end gRPC tests share: Switchyard with an h2c listener and a TLS (h2 by ALPN)
 * listener in front of one h2c upstream, grpc-js clients of either listener, and a `Probe`
 * service whose server records what each call saw (deadline, cancellation, call counts).
 */

export type Lb = Awaited<ReturnType<typeof startConfigured>>;

export interface Fronted {
  readonly lb: Lb;
  /** 127.0.0.1:PORT of the h2c listener. */
  readonly h2c: string;
  /** 127.0.0.1:PORT of the TLS listener (certificate for localhost and 127.0.0.1). */
  readonly tls: string;
}

/** Switchyard in front of `backend` (host:port, h2c); `upstream` adds to the upstream's settings. */
export async function front(t: TestContext, backend: string, ca: TestCa, upstream: Record<string, unknown> = {}): Promise<Fronted> {
  const cleanup = cleanupFor(t);
  const cert = await ca.issue('localhost', ['DNS:localhost', 'IP:127.0.0.1']);
  const config = localConfig({ grpc: { backends: [`http://${backend}`], protocol: 'h2c', ...upstream } } as ConfigInput['upstreams'], {
    listeners: [
      { host: '127.0.0.1', port: 0, h2c: true },
      { host: '127.0.0.1', port: 0, tls: { certificates: [{ cert: cert.certFile, key: cert.keyFile }] } },
    ],
  });
  const lb = await startConfigured({ config });
  cleanup(() => lb.close());
  const [h2c, tls] = lb.urls.map((url) => new URL(url).host);
  return { lb, h2c: h2c as string, tls: tls as string };
}

/** Client credentials for `address`: TLS trusting the test CA when given, else cleartext h2c. */
export function credentialsFor(ca?: TestCa): grpc.ChannelCredentials {
  return ca === undefined ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(Buffer.from(ca.caPem));
}

const serialize = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const deserialize = (bytes: Buffer): never => JSON.parse(bytes.toString('utf8')) as never;

function method(name: string, responseStream: boolean): grpc.MethodDefinition<ProbeRequest, ProbeReply> {
  return { path: `/switchyard.test.Probe/${name}`, requestStream: false, responseStream, requestSerialize: serialize, requestDeserialize: deserialize, responseSerialize: serialize, responseDeserialize: deserialize };
}

export interface ProbeRequest {
  /** Slow: answer after this long. Idle: pause this long between the two messages. */
  readonly delayMs?: number;
}

export interface ProbeReply {
  readonly n: number;
}

/**
 * Slow (unary): answers after `delayMs`. FailAfterMessage (server streaming): one message, then
 * UNAVAILABLE. Idle (server streaming): a message, a pause of `delayMs`, a second message, OK.
 */
export const probeService = {
  Slow: method('Slow', false),
  FailAfterMessage: method('FailAfterMessage', true),
  Idle: method('Idle', true),
} satisfies grpc.ServiceDefinition;

/** What the Probe server saw. */
export interface ProbeSeen {
  calls: number;
  /** Deadlines of the calls, ms from their arrival (Infinity: none, no grpc-timeout). */
  readonly deadlines: number[];
  /** Calls the server saw cancelled (the client or the proxy reset the stream). */
  cancelled: number;
  /** Resolves at the first cancellation. */
  readonly firstCancel: Promise<void>;
}

export interface ProbeServer {
  readonly address: string;
  readonly seen: ProbeSeen;
  close(): Promise<void>;
}

/** A grpc-js server (h2c) with the Probe service on 127.0.0.1:0. */
export async function startProbeServer(): Promise<ProbeServer> {
  let onCancel: () => void = () => {};
  const seen: ProbeSeen = { calls: 0, deadlines: [], cancelled: 0, firstCancel: new Promise<void>((resolve) => (onCancel = resolve)) };
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };
  const track = (call: grpc.ServerUnaryCall<ProbeRequest, ProbeReply> | grpc.ServerWritableStream<ProbeRequest, ProbeReply>): void => {
    seen.calls++;
    const deadline = call.getDeadline();
    seen.deadlines.push(deadline === Infinity ? Infinity : new Date(deadline).getTime() - Date.now());
    call.on('cancelled', () => {
      seen.cancelled++;
      onCancel();
    });
  };
  const server = new grpc.Server();
  server.addService(probeService, {
    Slow(call: grpc.ServerUnaryCall<ProbeRequest, ProbeReply>, callback: grpc.sendUnaryData<ProbeReply>) {
      track(call);
      later(call.request.delayMs ?? 0, () => {
        if (!call.cancelled) callback(null, { n: 1 });
      });
    },
    FailAfterMessage(call: grpc.ServerWritableStream<ProbeRequest, ProbeReply>) {
      track(call);
      call.write({ n: 1 });
      // After the message is on its way, so the response has certainly started.
      later(50, () => call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'failed after a message' }));
    },
    Idle(call: grpc.ServerWritableStream<ProbeRequest, ProbeReply>) {
      track(call);
      call.write({ n: 1 });
      later(call.request.delayMs ?? 0, () => {
        if (call.cancelled) return;
        call.write({ n: 2 });
        call.end();
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err === null ? resolve(bound) : reject(err)));
  });
  return {
    address: `127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        server.forceShutdown();
        resolve();
      }),
  };
}

const ProbeClient = grpc.makeGenericClientConstructor(probeService, 'Probe');

export type Probe = grpc.Client & Record<keyof typeof probeService, (...args: unknown[]) => unknown>;

export function probeClient(address: string, ca?: TestCa): Probe {
  return new ProbeClient(address, credentialsFor(ca)) as never;
}

/** A server stream's messages and final status (the client's view), within the call's deadline. */
export function readStream(call: grpc.ClientReadableStream<ProbeReply>): Promise<{ replies: ProbeReply[]; status: grpc.StatusObject }> {
  return new Promise((resolve) => {
    const replies: ProbeReply[] = [];
    call.on('data', (reply: ProbeReply) => replies.push(reply));
    call.on('error', () => {});
    call.on('status', (status: grpc.StatusObject) => resolve({ replies, status }));
  });
}

/**
 * A raw HTTP/2 "gRPC" server that answers each stream with the response head and one message,
 * then resets the stream (INTERNAL_ERROR): a backend failing after the response began.
 */
export async function startResettingServer(): Promise<{ address: string; calls: () => number; close(): Promise<void> }> {
  let calls = 0;
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  server.on('stream', (stream) => {
    calls++;
    stream.on('error', () => {});
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
    const body = Buffer.from(JSON.stringify({ n: 1 }));
    const head = Buffer.alloc(5);
    head.writeUInt32BE(body.length, 1);
    stream.write(Buffer.concat([head, body]), () => setTimeout(() => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR), 50));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    calls: () => calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.destroy();
      }),
  };
}
