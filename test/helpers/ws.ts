import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { closeServer } from './servers.js';

/**
 * A ws echo backend on a node:http server (so it can also refuse upgrades and answer plain
 * requests): `/private` is refused with 401, `/busy` with 503; the message `die` destroys that
 * tunnel's socket (a backend dying mid-tunnel).
 */
export interface WsBackend {
  readonly server: http.Server;
  readonly wss: WebSocketServer;
  readonly url: string;
  readonly port: number;
  /** Server-side sockets of tunnels now open. */
  readonly open: Set<WebSocket>;
  /** Handshake request headers seen, in order. */
  readonly handshakes: http.IncomingHttpHeaders[];
  close(): Promise<void>;
}

/** `refuseWith`: a status every handshake gets (a backend that refuses all upgrades). */
export async function startWsBackend(port = 0, refuseWith = 0): Promise<WsBackend> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-upgrade-seen': String(req.headers.upgrade ?? '') });
    res.end(`plain ${req.method} ${req.url}`);
  });
  const wss = new WebSocketServer({ noServer: true });
  const open = new Set<WebSocket>();
  const handshakes: http.IncomingHttpHeaders[] = [];
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    handshakes.push(req.headers);
    if (req.url === '/private') {
      socket.end('HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer\r\ncontent-length: 6\r\n\r\nno way');
      return;
    }
    if (req.url === '/busy' || refuseWith === 503) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      open.add(ws);
      ws.on('close', () => open.delete(ws));
      ws.on('message', (data, binary) => {
        const text = data.toString();
        if (text === 'die') (ws as unknown as { _socket: net.Socket })._socket.destroy();
        else ws.send(data, { binary });
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const bound = (server.address() as AddressInfo).port;
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      for (const ws of open) ws.terminate();
      wss.close();
      await closeServer(server);
    })();
    return closing;
  };
  return { server, wss, url: `http://127.0.0.1:${bound}`, port: bound, open, handshakes, close };
}

export function wsUrl(lbUrl: string, path = '/chat'): string {
  return `${lbUrl.replace(/^http/, 'ws')}${path}`;
}

/** Opens a WebSocket; rejects when the handshake is refused or fails. */
export async function openWs(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  await Promise.race([once(ws, 'open'), once(ws, 'unexpected-response').then(() => Promise.reject(new Error('refused')))]);
  return ws;
}

/** A handshake's outcome: 101 (the socket is then closed) or the refusal's status. */
export async function handshakeStatus(url: string): Promise<number> {
  const ws = new WebSocket(url);
  ws.on('error', () => {});
  const outcome = await Promise.race([
    once(ws, 'open').then(() => 101),
    once(ws, 'unexpected-response').then(([, res]) => (res as http.IncomingMessage).statusCode ?? 0),
  ]);
  ws.terminate();
  return outcome;
}

/** A handshake the backend refuses: resolves with the status once the refusal arrived, client closed. */
export async function refusedWs(url: string): Promise<number> {
  const ws = new WebSocket(url);
  ws.on('error', () => {});
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, http.IncomingMessage];
  ws.terminate();
  return res.statusCode ?? 0;
}

export async function echo(ws: WebSocket, text: string): Promise<string> {
  ws.send(text);
  const [data] = (await once(ws, 'message')) as [Buffer];
  return data.toString();
}
