import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { promises as dns } from 'node:dns';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { closeServer } from './servers.js';

/**
 * A real dnsmasq (Debian's dnsmasq-base) on a loopback UDP/TCP port, authoritative for `.test`.
 * A and AAAA records live in an addn-hosts file that `setHosts` rewrites and dnsmasq re-reads on
 * SIGHUP; SRV records are flags, which it reads only at start, so `setSrv` restarts it on the
 * same port. Every change is awaited: a sentinel name `vN.test` in the file says it is in force.
 */
export interface Dnsmasq {
  readonly port: number;
  /** `127.0.0.1:PORT`, for `discover.dns.servers`. */
  readonly server: string;
  /** Replaces the A/AAAA records: name → addresses. */
  setHosts(records: Readonly<Record<string, readonly string[]>>): Promise<void>;
  /** Replaces the SRV records (`--srv-host=NAME,TARGET,PORT,PRIORITY,WEIGHT` values); restarts dnsmasq. */
  setSrv(records: readonly string[]): Promise<void>;
  /** Stops the server (the DNS goes away); `start()` brings it back with the same records. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** Where Debian installs it (.ci/run installs dnsmasq-base). */
export const dnsmasqPath = ['/usr/sbin/dnsmasq', '/usr/bin/dnsmasq', '/sbin/dnsmasq'].find((file) => existsSync(file)) ?? 'dnsmasq';

/** A port free for both UDP and TCP on 127.0.0.1 (dnsmasq listens on both). */
async function freeDnsPort(): Promise<number> {
  for (;;) {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const port = socket.address().port;
    const tcp = net.createServer();
    const free = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (free) await closeServer(tcp);
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    if (free) return port;
  }
}

export async function startDnsmasq(cleanup: (fn: () => unknown) => void): Promise<Dnsmasq> {
  const dir = mkdtempSync(path.join(tmpdir(), 'swy-dnsmasq-'));
  cleanup(() => rmSync(dir, { recursive: true, force: true }));
  const hostsFile = path.join(dir, 'hosts');
  const port = await freeDnsPort();
  const resolver = new dns.Resolver({ timeout: 300, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  let version = 0;
  let hosts: Readonly<Record<string, readonly string[]>> = {};
  let srv: readonly string[] = [];
  let child: ChildProcess | null = null;

  const writeHosts = (): string => {
    version++;
    const lines = [`127.0.0.1 v${version}.test`];
    for (const [name, addresses] of Object.entries(hosts)) for (const address of addresses) lines.push(`${address} ${name}`);
    writeFileSync(hostsFile, `${lines.join('\n')}\n`);
    return `v${version}.test`;
  };
  const answers = async (name: string): Promise<boolean> => {
    try {
      await resolver.resolve4(name);
      return true;
    } catch {
      return false;
    }
  };
  const waitFor = async (name: string): Promise<void> => {
    const deadline = Date.now() + 5000;
    while (!(await answers(name))) if (Date.now() > deadline) throw new Error(`dnsmasq on :${port} did not serve ${name}`);
  };
  const stop = async (): Promise<void> => {
    const running = child;
    child = null;
    if (running === null || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    await exited;
  };
  const start = async (): Promise<void> => {
    const sentinel = writeHosts();
    const args = [
      `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts', '--keep-in-foreground',
      '--local=/test/', `--addn-hosts=${hostsFile}`, '--pid-file=', `--user=${userInfo().username}`, '--log-facility=-', '--quiet-dhcp',
      ...srv.map((record) => `--srv-host=${record}`),
    ];
    const proc = spawn(dnsmasqPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child = proc;
    try {
      await waitFor(sentinel);
    } catch (err) {
      throw new Error(`${(err as Error).message}: ${stderr.trim()}`);
    }
  };
  cleanup(stop);
  await start();
  return {
    port,
    server: `127.0.0.1:${port}`,
    async setHosts(records) {
      hosts = records;
      const sentinel = writeHosts();
      child?.kill('SIGHUP');
      await waitFor(sentinel);
    },
    async setSrv(records) {
      srv = records;
      await stop();
      await start();
    },
    stop,
    start,
  };
}

/** HTTP backends on 127.0.0.2, .3, … all on one port (an A record carries no port); each answers its address. */
export async function startAddressBackends(count: number, cleanup: (fn: () => unknown) => void): Promise<{ port: number; hosts: string[]; hits: Map<string, number> }> {
  const hits = new Map<string, number>();
  const hosts = Array.from({ length: count }, (_, i) => `127.0.0.${i + 2}`);
  let port = 0;
  for (const host of hosts) {
    const server = http.createServer((req, res) => {
      hits.set(host, (hits.get(host) ?? 0) + 1);
      req.resume();
      req.on('end', () => res.writeHead(200, { 'x-backend': host }).end(host));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, resolve);
    });
    port = (server.address() as AddressInfo).port;
    cleanup(() => closeServer(server));
  }
  return { port, hosts, hits };
}

