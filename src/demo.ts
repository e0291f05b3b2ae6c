import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DemoBackends {
  readonly urls: readonly string[];
  close(): Promise<void>;
}

/**
 * Starts `count` small HTTP servers on 127.0.0.1 (free ports), each answering with its own
 * name so repeated requests through Switchyard show the rotation.
 */
export async function startDemoBackends(count: number): Promise<DemoBackends> {
  const servers: http.Server[] = [];
  const urls: string[] = [];
  for (let i = 1; i <= count; i++) {
    const name = `demo-backend-${i}`;
    const server = http.createServer((req, res) => {
      const body = `Hello from ${name} (${req.method} ${req.url})\n`;
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'x-backend': name, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    servers.push(server);
    urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }
  return {
    urls,
    async close() {
      await Promise.all(
        servers.map((server) => {
          server.closeAllConnections();
          return new Promise<void>((resolve) => server.close(() => resolve()));
        }),
      );
    },
  };
}
