import type * as Undici from 'undici';

let loading: Promise<typeof Undici> | null = null;

/**
 * undici, loaded on first use by the observers that need it (HTTP health checks, Consul and
 * Kubernetes discovery), so a process that never runs one does not pay for the module: about
 * 19 MiB of heap and code at start-up (issue 12, peak memory).
 */
export function loadUndici(): Promise<typeof Undici> {
  return (loading ??= import('undici'));
}
