import { spawn } from 'node:child_process';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * More accepts per event-loop turn.
 *
 * Since libuv 1.45 (Node 20), a listening socket accepts at most one connection each time
 * epoll reports it readable, i.e. one per event-loop turn. Under load a turn takes tens of
 * milliseconds, so a burst of new connections (1000 clients arriving at once) waits seconds in
 * the kernel's accept queue while their requests are already sent: the multi-second p99 every
 * Node proxy shows at 1000 connections.
 *
 * The remedy here: extra file descriptors for the same listening socket. epoll reports each of
 * them readable while the queue is not empty, so a turn accepts up to one connection per
 * descriptor. Node has no dup(); passing the socket to a child process and back over IPC
 * (SCM_RIGHTS) yields a new descriptor each time. The child lives for a moment at start-up,
 * accepts nothing, and has exited when this resolves. The extra descriptors cost nothing
 * while the queue is empty.
 *
 * Node 22.12+ offers a second way, used there on Linux: `reusePort` (SO_REUSEPORT) binds more
 * listening sockets to the same port; the kernel spreads new connections over their queues and
 * each is read once per turn. No child process, and no spare wake-ups on an empty queue.
 */

/** How the extra accepts per turn are made: more sockets on the port, or more descriptors of one. */
export type AcceptMode = 'reuse-port' | 'duplicate';

/** `listen({ reusePort })` came in Node 22.12 and 23.1; it is honoured on Linux (3.9+). */
export function reusePortSupported(version: string = process.versions.node, platform: string = process.platform): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return platform === 'linux' && (major > 22 || (major === 22 && minor >= 12));
}

/** SO_REUSEPORT sockets where Node and the OS offer them, duplicated descriptors elsewhere. */
export function defaultAcceptMode(): AcceptMode {
  return reusePortSupported() ? 'reuse-port' : 'duplicate';
}

export interface BatchListenOptions {
  readonly port: number;
  readonly host: string | undefined;
  readonly backlog: number;
}

// `reusePort` is missing from the Node 20 typings this project builds against.
type ReusePortListenOptions = net.ListenOptions & { reusePort?: boolean };

function listenOnce(server: net.Server, options: ReusePortListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Makes `server` listen, then adds what it takes to accept up to `batch` connections per
 * event-loop turn. Resolves with the extra listeners (fewer, or none, when the OS refuses
 * more); each hands its connections to `onConnection`. A port already in use rejects, as a
 * plain listen does.
 */
export async function listenBatched(
  server: net.Server,
  options: BatchListenOptions,
  batch: number,
  onConnection: (socket: net.Socket) => void,
  mode: AcceptMode = defaultAcceptMode(),
): Promise<net.Server[]> {
  const { port, host, backlog } = options;
  if (batch <= 1 || mode === 'duplicate') {
    await listenOnce(server, { port, host, backlog });
    return duplicateListeners(server, batch - 1, onConnection);
  }
  // SO_REUSEPORT would let us join a port another process (of the same user) holds with it, and
  // share its traffic unseen: bind once without it first, so a port in use stays an error.
  if (port !== 0) {
    const probe = net.createServer();
    await listenOnce(probe, { port, host });
    await new Promise((resolve) => probe.close(resolve));
  }
  await listenOnce(server, { port, host, backlog, reusePort: true });
  const bound = (server.address() as AddressInfo).port;
  const extra = await reusePortListeners({ port: bound, host, backlog }, batch - 1, onConnection);
  // A kernel that took the first socket but refuses more: fall back to duplicates of it.
  return extra.length > 0 ? extra : duplicateListeners(server, batch - 1, onConnection);
}

/** Up to `count` more sockets bound with SO_REUSEPORT to the port of a socket that has it. */
async function reusePortListeners(options: BatchListenOptions, count: number, onConnection: (socket: net.Socket) => void): Promise<net.Server[]> {
  const counted = countedAccept(onConnection);
  const servers = Array.from({ length: count }, () => net.createServer({ noDelay: true }, counted));
  const results = await Promise.allSettled(servers.map((server) => listenOnce(server, { ...options, reusePort: true })));
  const listening: net.Server[] = [];
  for (let i = 0; i < servers.length; i++) {
    const server = servers[i] as net.Server;
    if (results[i]?.status === 'fulfilled') {
      server.on('error', () => server.close());
      listening.push(server);
    }
  }
  return listening;
}

// The child returns the handle `count` times, each send a fresh descriptor, then says done.
const childSource =
  "process.on('message',(m,h)=>{for(let i=0;i<m.count;i++)process.send('fd',h);process.send('done',()=>process.disconnect())})";

/** Connections accepted on the extra listeners (either mode) in this process, so tests can see them work. */
let acceptedOnExtras = 0;

/** How many connections the extra listeners of this process have accepted so far. */
export function extraAccepts(): number {
  return acceptedOnExtras;
}

function countedAccept(onConnection: (socket: net.Socket) => void): (socket: net.Socket) => void {
  return (socket) => {
    acceptedOnExtras++;
    onConnection(socket);
  };
}

interface ServerWithHandle extends net.Server {
  _handle?: object | null;
}

/**
 * Returns `count` servers listening on duplicates of `server`'s socket, each handing its
 * connections to `onConnection`. Resolves with fewer (possibly none) if duplication fails.
 */
export function duplicateListeners(
  server: net.Server,
  count: number,
  onConnection: (socket: net.Socket) => void,
  timeoutMs = 5000,
): Promise<net.Server[]> {
  const handle = (server as ServerWithHandle)._handle;
  if (count <= 0 || handle === undefined || handle === null) return Promise.resolve([]);
  return new Promise((resolve) => {
    const extra: net.Server[] = [];
    let settled = false;
    const child = spawn(process.execPath, ['-e', childSource], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
    // Resolves when the child has gone: on its own after 'done', or killed after the timeout.
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(extra);
    };
    const timer = setTimeout(() => child.kill(), timeoutMs);
    timer.unref();
    const counted = (socket: net.Socket): void => {
      acceptedOnExtras++;
      onConnection(socket);
    };
    child.on('message', (message: unknown, duplicate?: unknown) => {
      if (message !== 'fd' || duplicate === undefined || settled) return;
      const listener = net.createServer({ noDelay: true }, counted);
      listener.on('error', () => listener.close());
      listener.listen(duplicate as net.ListenOptions);
      extra.push(listener);
    });
    child.on('error', finish);
    child.on('exit', finish);
    child.send({ count }, handle as net.Server);
  });
}
