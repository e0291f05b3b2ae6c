import { Counter, Gauge, type Registry } from 'prom-client';
import type { MetricsSource } from './backend-gauges.js';

/** Per-listener WebSocket tunnel figures, read from the listeners at scrape time (nothing per request). */
export function registerListenerGauges(registry: Registry, source: MetricsSource, prefix: string): void {
  const registers = [registry];
  new Gauge({
    name: `${prefix}listener_tunnels_open`,
    help: 'WebSocket tunnels open through the listener.',
    labelNames: ['listener'],
    registers,
    collect() {
      this.reset();
      for (const l of source.listenerTunnels?.() ?? []) this.set({ listener: l.listener }, l.tunnels.open);
    },
  });
  new Counter({
    name: `${prefix}listener_tunnels_total`,
    help: 'WebSocket tunnels opened through the listener (101 relayed).',
    labelNames: ['listener'],
    registers,
    collect() {
      this.reset();
      for (const l of source.listenerTunnels?.() ?? []) this.inc({ listener: l.listener }, l.tunnels.total);
    },
  });
  new Counter({
    name: `${prefix}listener_tunnel_bytes_total`,
    help: 'Bytes through the listener\'s WebSocket tunnels: direction "in" is client to backend, "out" backend to client.',
    labelNames: ['listener', 'direction'],
    registers,
    collect() {
      this.reset();
      for (const l of source.listenerTunnels?.() ?? []) {
        this.inc({ listener: l.listener, direction: 'in' }, l.tunnels.bytesIn);
        this.inc({ listener: l.listener, direction: 'out' }, l.tunnels.bytesOut);
      }
    },
  });
}
