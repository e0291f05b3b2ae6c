import { promises as dns, type SrvRecord } from 'node:dns';
import { systemClock, type Clock, type Timer } from '../clock.js';
import type { DnsDiscoveryConfig } from '../config/discovery-schema.js';
import type { DiscoveredBackend, DiscoveryDeps, DiscoverySink, DiscoverySource } from './source.js';

/** One query's limit: c-ares tries each server `tries` times, waiting this long for each. */
const queryTimeoutMs = 2000;
const queryTries = 2;

/** An answer: the backends, and the smallest TTL among the records that gave them (seconds; null: none). */
interface Answer {
  readonly backends: DiscoveredBackend[];
  readonly ttlS: number | null;
}

/**
 * NODATA: the name exists and has no record of the type asked. That is an explicit "none" (a
 * service scaled to zero), so it empties the set. NXDOMAIN is not: a misspelt name or a zone
 * that went missing looks the same, and emptying a serving upstream on it would be worse than
 * keeping the last good set, so it is an error like a timeout.
 */
const emptyAnswerCodes: ReadonlySet<string> = new Set(['ENODATA']);

const hostInUrl = (address: string): string => (address.includes(':') ? `[${address}]` : address);

/**
 * DNS discovery with the c-ares resolver (not getaddrinfo: it gives TTLs and takes servers):
 * A/AAAA records are one backend each on the configured port; SRV records are one backend per
 * target address and port, with the SRV weight as weight (0 counts as 1), keeping only the
 * records of the lowest priority (RFC 2782). The name is re-resolved when the answer's TTL runs
 * out, within minInterval..maxInterval; a failure is retried after minInterval.
 */
export class DnsSource implements DiscoverySource {
  readonly kind = 'dns';
  readonly description: string;
  private readonly options: DnsDiscoveryConfig;
  private readonly resolver: dns.Resolver;
  private readonly clock: Clock;
  private timer: Timer | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(options: DnsDiscoveryConfig, deps: DiscoveryDeps) {
    this.options = options;
    this.clock = deps.clock ?? systemClock;
    this.description = options.type === 'SRV' ? `dns+srv://${options.name}` : `dns://${options.name}:${options.port ?? 0}${options.type === 'AAAA' ? '?type=AAAA' : ''}`;
    this.resolver = new dns.Resolver({ timeout: queryTimeoutMs, tries: queryTries });
    if (options.servers !== undefined) this.resolver.setServers([...options.servers]);
  }

  start(sink: DiscoverySink): void {
    this.running = this.refresh(sink);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.resolver.cancel();
    await this.running;
  }

  /** Resolves once, reports, and schedules the next round. */
  private async refresh(sink: DiscoverySink): Promise<void> {
    const { minInterval, maxInterval } = this.options;
    let delayMs = minInterval;
    try {
      const answer = await this.resolve();
      if (this.stopped) return;
      sink.update(answer.backends);
      if (answer.ttlS !== null) delayMs = Math.min(maxInterval, Math.max(minInterval, answer.ttlS * 1000));
    } catch (err) {
      if (this.stopped) return;
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (emptyAnswerCodes.has(code)) sink.update([]);
      else sink.error(new Error(`${this.options.type} ${this.options.name}: ${code === '' ? (err as Error).message : dnsErrorWords(code)}`, { cause: err }));
    }
    if (this.stopped) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.running = this.refresh(sink);
    }, delayMs);
  }

  private async resolve(): Promise<Answer> {
    const { name, type, port } = this.options;
    if (type !== 'SRV') {
      const records = type === 'A' ? await this.resolver.resolve4(name, { ttl: true }) : await this.resolver.resolve6(name, { ttl: true });
      return {
        backends: records.map((r) => ({ url: `${this.options.scheme}://${hostInUrl(r.address)}:${port ?? 80}`, weight: 1, terminating: false })),
        ttlS: minTtl(records.map((r) => r.ttl)),
      };
    }
    const records = await this.resolver.resolveSrv(name);
    // A lone "." target: the service is decidedly not available at this domain (RFC 2782).
    const usable = records.filter((r) => r.name !== '' && r.name !== '.');
    if (usable.length === 0) return { backends: [], ttlS: null };
    const best = Math.min(...usable.map((r) => r.priority));
    const chosen = usable.filter((r) => r.priority === best);
    // Node's SRV answer has no TTL: the targets' address records give one.
    const resolved = await Promise.all(chosen.map((r) => this.targetAddresses(r)));
    const backends: DiscoveredBackend[] = [];
    const ttls: number[] = [];
    resolved.forEach((addresses, i) => {
      const record = chosen[i] as SrvRecord;
      for (const a of addresses) {
        backends.push({ url: `${this.options.scheme}://${hostInUrl(a.address)}:${record.port}`, weight: record.weight === 0 ? 1 : record.weight, terminating: false });
        ttls.push(a.ttl);
      }
    });
    return { backends, ttlS: minTtl(ttls) };
  }

  /** An SRV target's addresses: A records, or AAAA when it has no A record. */
  private async targetAddresses(record: SrvRecord): Promise<{ address: string; ttl: number }[]> {
    try {
      return await this.resolver.resolve4(record.name, { ttl: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENODATA') throw new Error(`target ${record.name}: ${dnsErrorWords((err as NodeJS.ErrnoException).code ?? '')}`, { cause: err });
      return this.resolver.resolve6(record.name, { ttl: true });
    }
  }
}

function minTtl(ttls: readonly number[]): number | null {
  return ttls.length === 0 ? null : Math.min(...ttls);
}

/** c-ares error codes in words for the log and the admin API. */
function dnsErrorWords(code: string): string {
  switch (code) {
    case 'ENOTFOUND':
      return 'no such name (NXDOMAIN)';
    case 'ETIMEOUT':
      return 'no answer from the DNS servers (timeout)';
    case 'ECONNREFUSED':
      return 'DNS server refused the connection';
    case 'ESERVFAIL':
      return 'the DNS server failed (SERVFAIL)';
    case 'EREFUSED':
      return 'the DNS server refused the query (REFUSED)';
    default:
      return code;
  }
}
