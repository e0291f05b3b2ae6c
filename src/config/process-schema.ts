import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { strict } from './schema-support.js';

/** Top-level settings about the process itself: the admin listener and worker processes. */

export const adminSchema = strict({
  host: z.string().default('127.0.0.1').describe('Address the admin API binds. Anything but loopback requires a token.'),
  port: z.number().int().min(0).max(65535).default(9901).describe('Port of the admin API.'),
  token: z.string().min(1).optional().describe('Bearer token the admin API requires. Default: $SWITCHYARD_ADMIN_TOKEN. Needed when bound to anything but loopback.'),
});

/** Most worker processes accepted: more than any machine's cores today, few enough to catch a typo. */
export const maxWorkers = 256;

export const workersSchema = z
  .union([z.number().int().min(1).max(maxWorkers), z.literal('auto')], { error: `workers is a whole number from 1 to ${maxWorkers}, or "auto"` })
  .default(1)
  .describe('Worker processes that serve traffic (node:cluster); `auto` is one per core. 1 serves from this one process. With more, the primary process runs health checks, reloads and the admin API; see docs/workers.md. Read at start only.');

/** The number of worker processes `workers` means on this machine. */
export function resolveWorkers(workers: number | 'auto'): number {
  return workers === 'auto' ? Math.min(maxWorkers, availableParallelism()) : workers;
}

/** `--workers N|auto`. */
export function parseWorkersFlag(text: string): number | 'auto' {
  if (text === 'auto') return 'auto';
  const count = Number(text);
  if (!/^\d+$/.test(text) || count < 1 || count > maxWorkers) throw new ConfigError(`--workers: "${text}" must be a whole number from 1 to ${maxWorkers}, or auto`);
  return count;
}
