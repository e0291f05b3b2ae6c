import type { DiscoveryConfig } from '../config/discovery-schema.js';
import type { DiscoverySource } from './source.js';

/**
 * The stand-in source of a worker process (docs/workers.md): it watches nothing. The primary runs
 * the real source and sends each set it applies over IPC; the worker applies it with
 * `Discoveries.follow()`, so one watch serves every worker.
 */
export class FollowedSource implements DiscoverySource {
  readonly kind: string;
  readonly description: string;

  constructor(spec: DiscoveryConfig) {
    this.kind = spec.dns !== undefined ? 'dns' : spec.kubernetes !== undefined ? 'kubernetes' : 'consul';
    this.description = `${this.kind}, watched by the primary process`;
  }

  start(): void {}

  stop(): Promise<void> {
    return Promise.resolve();
  }
}
