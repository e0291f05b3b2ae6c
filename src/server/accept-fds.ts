import { spawn } from 'node:child_process';
import net from 'node:net';

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
 */

// The child returns the handle `count` times, each send a fresh descriptor, then says done.
const childSource =
  "process.on('message',(m,h)=>{for(let i=0;i<m.count;i++)process.send('fd',h);process.send('done',()=>process.disconnect())})";

/** Connections accepted on duplicate descriptors in this process, so tests can see them work. */
let acceptedOnDuplicates = 0;

/** How many connections the duplicate descriptors of this process have accepted so far. */
export function duplicateAccepts(): number {
  return acceptedOnDuplicates;
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
      acceptedOnDuplicates++;
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
