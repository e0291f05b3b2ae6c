import { writeTunnelLog } from '../access-log.js';
import type { Logger } from '../log.js';
import type { Backend } from '../upstream/backend.js';
import type { OpenTunnel, TunnelCounts } from './context.js';

/** Where an access-log line says a tunnel went. */
export interface TunnelPlace {
  readonly clientIp: string;
  readonly host: string;
  readonly path: string;
  readonly upstream: string;
}

/**
 * An open tunnel's figures (past its 101): counted into its backend's and its listener's as
 * bytes flow, counted down and logged (with the access log on) when it closes.
 */
export class TunnelTally {
  private readonly tunnel: OpenTunnel;
  private readonly backend: Backend;
  private readonly counts: TunnelCounts;
  private readonly openedMs = performance.now();
  private bytesIn = 0;
  private bytesOut = 0;

  constructor(tunnel: OpenTunnel, backend: Backend, counts: TunnelCounts) {
    this.tunnel = tunnel;
    this.backend = backend;
    this.counts = counts;
    backend.openTunnels.add(tunnel);
    backend.tunnelsTotal++;
    counts.open++;
    counts.total++;
  }

  /** Bytes from the client to the backend. */
  in(bytes: number): void {
    this.bytesIn += bytes;
    this.backend.tunnelBytesIn += bytes;
    this.counts.bytesIn += bytes;
  }

  /** Bytes from the backend to the client. */
  out(bytes: number): void {
    this.bytesOut += bytes;
    this.backend.tunnelBytesOut += bytes;
    this.counts.bytesOut += bytes;
  }

  /** The tunnel closed (called once). */
  closed(accessLog: Logger | null, place: TunnelPlace): void {
    this.backend.openTunnels.delete(this.tunnel);
    this.counts.open--;
    if (accessLog === null) return;
    const durationMs = performance.now() - this.openedMs;
    writeTunnelLog(accessLog, { ...place, backend: this.backend.url, durationMs, bytesIn: this.bytesIn, bytesOut: this.bytesOut });
  }
}
