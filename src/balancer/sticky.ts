import { createHmac, randomBytes } from 'node:crypto';
import { ConfigError } from '../errors.js';
import type { Backend } from '../upstream/backend.js';
import { isEligible } from './eligibility.js';
import type { Balancer, PickContext } from './types.js';

/** Cookie-based session affinity. */
export interface StickyOptions {
  /** Cookie name. Default `swy`. */
  readonly cookie?: string;
  /**
   * Key of the HMAC that turns a backend URL into the cookie value. Default: random per process,
   * so set it when cookies must survive a restart or work across several instances.
   */
  readonly secret?: string;
  /** Cookie lifetime (Max-Age). Default: a session cookie, gone when the browser closes. */
  readonly ttlMs?: number;
}

/** Checked sticky options with their defaults filled in. */
export interface StickySettings {
  readonly cookie: string;
  readonly secret: string;
  /** Attributes after the value, e.g. `; Path=/; HttpOnly; SameSite=Lax`. */
  readonly attributes: string;
}

/** Checks sticky options and fills in defaults; a ConfigError names the problem. */
export function stickySettings(options: StickyOptions): StickySettings {
  const cookie = options.cookie ?? 'swy';
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(cookie)) throw new ConfigError(`sticky.cookie "${cookie}" is not a valid cookie name`);
  if (options.secret !== undefined && options.secret.length < 8) throw new ConfigError('sticky.secret must be at least 8 characters');
  if (options.ttlMs !== undefined && !(options.ttlMs >= 1000 && Number.isFinite(options.ttlMs))) throw new ConfigError('sticky.ttlMs must be at least 1000 (one second)');
  const maxAge = options.ttlMs === undefined ? '' : `; Max-Age=${Math.floor(options.ttlMs / 1000)}`;
  return { cookie, secret: options.secret ?? randomBytes(32).toString('hex'), attributes: `; Path=/; HttpOnly; SameSite=Lax${maxAge}` };
}

/** What sticky reads from a request besides the usual pick context. */
export interface StickyContext extends PickContext {
  /** The sticky cookie's value as the client sent it. */
  readonly stickyId?: string | undefined;
}

/**
 * Sticky sessions on top of any balancer: the cookie holds HMAC-SHA256(secret, backend URL),
 * stable across restarts and instances that share the secret, and revealing nothing about the
 * backend. A request whose cookie names an eligible backend goes there; otherwise the inner
 * balancer picks and the response re-issues the cookie.
 */
export class StickySessions implements Balancer {
  readonly cookieName: string;
  private readonly inner: Balancer;
  private readonly byId: Map<string, Backend>;
  private readonly idOf: Map<Backend, string>;
  /** The whole Set-Cookie value per backend, built once. */
  private readonly setCookieOf: Map<Backend, string>;

  constructor(inner: Balancer, backends: readonly Backend[], settings: StickySettings) {
    const { cookie, secret, attributes } = settings;
    this.cookieName = cookie;
    this.inner = inner;
    this.byId = new Map();
    this.idOf = new Map();
    this.setCookieOf = new Map();
    for (const backend of backends) {
      const id = createHmac('sha256', secret).update(backend.url).digest('base64url').slice(0, 22);
      this.byId.set(id, backend);
      this.idOf.set(backend, id);
      this.setCookieOf.set(backend, `${cookie}=${id}${attributes}`);
    }
  }

  pick(ctx: StickyContext): Backend | undefined {
    const id = ctx.stickyId;
    if (id !== undefined) {
      const pinned = this.byId.get(id);
      if (pinned !== undefined && isEligible(pinned, ctx)) return pinned;
    }
    return this.inner.pick(ctx);
  }

  /** The Set-Cookie value to send when `backend` is not the one the client's cookie names. */
  setCookieFor(backend: Backend, stickyId: string | undefined): string | undefined {
    return stickyId !== undefined && this.idOf.get(backend) === stickyId ? undefined : this.setCookieOf.get(backend);
  }

  onAttemptStart(backend: Backend): void {
    this.inner.onAttemptStart?.(backend);
  }

  onAttemptEnd(backend: Backend, failed: boolean, latencyMs: number): void {
    this.inner.onAttemptEnd?.(backend, failed, latencyMs);
  }

  onBackendState(backend: Backend): void {
    this.inner.onBackendState?.(backend);
  }
}
