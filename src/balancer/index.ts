import type { Backend } from '../upstream/backend.js';
import { RoundRobin } from './round-robin.js';

/** What a balancer may look at when it picks. Built once per request, reused across attempts. */
export interface PickContext {
  readonly clientIp: string;
  readonly hashKey?: string;
  /** Backends this request already tried and gave up on. */
  readonly exclude?: ReadonlySet<Backend> | undefined;
}

/** Chooses one available backend, or undefined when none is. Allocates nothing per pick. */
export interface Balancer {
  pick(ctx: PickContext): Backend | undefined;
}

export type BalancerFactory = (backends: readonly Backend[]) => Balancer;

/** Balancers by the name used in flags and config. */
export const balancers: Readonly<Record<string, BalancerFactory>> = {
  'round-robin': (backends) => new RoundRobin(backends),
};

export function isEligible(backend: Backend, ctx: PickContext): boolean {
  return backend.available && (ctx.exclude === undefined || !ctx.exclude.has(backend));
}
