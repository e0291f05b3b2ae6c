import http from 'node:http';
import { spawnCli, type CliProcess } from '../helpers/cli.js';
import { startBackend, type TestBackend } from '../helpers/servers.js';

/** Helpers of the worker-process tests: counting backends, fresh-connection requests, the admin API. */

export interface Reply {
  readonly status: number;
  readonly body: string;
  readonly headers: http.IncomingHttpHeaders;
}

/** One GET on a new connection (no keep-alive), so the kernel may hand it to any worker. */
export function freshGet(port: number, path = '/', headers: http.OutgoingHttpHeaders = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

/** `count` fresh-connection GETs, `concurrency` at a time; every reply (an error rejects). */
export async function freshGets(port: number, count: number, concurrency = 8, headers: http.OutgoingHttpHeaders = {}): Promise<Reply[]> {
  const replies: Reply[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        replies.push(await freshGet(port, '/', headers));
      }
    }),
  );
  return replies;
}

/** Backends that count proxied requests apart from health checks (GET /health). */
export async function countingBackends(names: readonly string[], cleanup: (fn: () => unknown) => void): Promise<TestBackend[]> {
  const backends = await Promise.all(names.map((name) => startBackend(name)));
  for (const backend of backends) cleanup(() => backend.close());
  return backends;
}

export const served = (backend: TestBackend): number => backend.seen.filter((s) => s.url !== '/health').length;
export const probes = (backend: TestBackend): number => backend.seen.filter((s) => s.url === '/health').length;

export async function adminJson(admin: string, path: string, method = 'GET'): Promise<unknown> {
  const res = await fetch(`${admin}${path}`, { method, signal: AbortSignal.timeout(5000) });
  return res.json() as Promise<unknown>;
}

export interface WorkerInfo {
  readonly id: number;
  readonly pid: number | null;
  readonly serving: boolean;
}

export async function workersOf(admin: string): Promise<WorkerInfo[]> {
  return ((await adminJson(admin, '/api/status')) as { workers: WorkerInfo[] }).workers;
}

/**
 * Starts the CLI with its admin API on a free port and waits until it serves. Clean-up kills
 * any worker process still alive after the primary (they exit on their own when it goes).
 */
export async function startCluster(args: readonly string[], cleanup: (fn: () => unknown) => void): Promise<{ cli: CliProcess; port: number; admin: string }> {
  const seen = new Set<number>();
  cleanup(() => {
    for (const pid of seen) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone, as it should be.
      }
    }
  });
  // A config file says where to listen itself (admin port 0 included).
  const cli = spawnCli(args.includes('--config') ? args : ['--admin', '127.0.0.1:0', '--host', '127.0.0.1', '--port', '0', ...args], cleanup);
  const port = await cli.started(20_000);
  const admin = String((await cli.waitForLog('Admin API and dashboard at'))['admin']);
  const remember = async (): Promise<void> => {
    for (const w of await workersOf(admin)) if (w.pid !== null) seen.add(w.pid);
  };
  await remember();
  cleanup(() => remember().catch(() => undefined));
  return { cli, port, admin };
}
