import { ConfigError } from '../errors.js';

/** Active health check settings, fully defaulted (see resolveHealthOptions). */
export type HealthCheckType = 'tcp' | 'http';
export type HealthCheckMethod = 'GET' | 'HEAD';
/** An inclusive range of HTTP status codes: `[200, 399]`; one code is `[204, 204]`. */
export type StatusRange = readonly [number, number];

export interface ActiveHealthOptions {
  /** `tcp`: a connection opens. `http`: a request gets an expected status (and body). */
  readonly type: HealthCheckType;
  /** Time between checks of one backend, before jitter. */
  readonly intervalMs: number;
  /** Each wait is `intervalMs` × (1 ± jitter), drawn per check, so backends' checks spread out. 0..0.5. */
  readonly jitter: number;
  /** A check not finished by then (connect, headers, body) fails. */
  readonly timeoutMs: number;
  /** Consecutive passes that bring a backend that is down back up. */
  readonly rise: number;
  /** Consecutive failures that take a backend that is up down. */
  readonly fall: number;
  /** http: request path, absolute on the backend's origin (the backend URL's base path is not prefixed). */
  readonly path: string;
  readonly method: HealthCheckMethod;
  /** http: Host header; '' sends the backend's own host:port. */
  readonly host: string;
  /** http: the statuses that pass. */
  readonly expectStatus: readonly StatusRange[];
  /** http: a text the first 64 KiB of the body must contain; '' checks no body. */
  readonly bodyContains: string;
}

/**
 * Defaults that depend on the check type. TCP keeps the original simple design (every 20 s, one
 * check flips the state); HTTP follows HAProxy's `inter 2s rise 2 fall 3`.
 */
export function healthDefaults(type: HealthCheckType): ActiveHealthOptions {
  const http = type === 'http';
  return {
    type,
    intervalMs: http ? 2000 : 20_000,
    jitter: 0.1,
    timeoutMs: 2000,
    rise: http ? 2 : 1,
    fall: http ? 3 : 1,
    path: '/',
    method: 'GET',
    host: '',
    expectStatus: [[200, 399]],
    bodyContains: '',
  };
}

/** The `healthCheck` config section (durations in ms); absent fields take the type's defaults. */
export interface HealthCheckConfig {
  readonly type?: HealthCheckType | undefined;
  readonly interval?: number | undefined;
  readonly jitter?: number | undefined;
  readonly timeout?: number | undefined;
  readonly rise?: number | undefined;
  readonly fall?: number | undefined;
  readonly path?: string | undefined;
  readonly method?: HealthCheckMethod | undefined;
  readonly host?: string | undefined;
  readonly expectStatus?: readonly StatusRange[] | undefined;
  readonly bodyContains?: string | undefined;
}

/** The one place a `healthCheck` config section becomes checker options, defaults by type included. */
export function resolveHealthOptions(config: HealthCheckConfig = {}): ActiveHealthOptions {
  const d = healthDefaults(config.type ?? 'tcp');
  return {
    type: d.type,
    intervalMs: config.interval ?? d.intervalMs,
    jitter: config.jitter ?? d.jitter,
    timeoutMs: config.timeout ?? d.timeoutMs,
    rise: config.rise ?? d.rise,
    fall: config.fall ?? d.fall,
    path: config.path ?? d.path,
    method: config.method ?? d.method,
    host: config.host ?? d.host,
    expectStatus: config.expectStatus ?? d.expectStatus,
    bodyContains: config.bodyContains ?? d.bodyContains,
  };
}

const statusPattern = /^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$/;

/** Parses `200`, `"204"` or `"200-399"` into an inclusive range; a ConfigError says what is wrong. */
export function parseStatusRange(value: number | string): StatusRange {
  const match = statusPattern.exec(String(value));
  if (match === null) throw new ConfigError(`"${value}" is not a status code or range (examples: 200, "200-399")`);
  const low = Number(match[1]);
  const high = match[2] === undefined ? low : Number(match[2]);
  if (low < 100 || high > 599) throw new ConfigError(`"${value}": status codes are 100-599`);
  if (low > high) throw new ConfigError(`"${value}": the range is backwards (${low} > ${high})`);
  return [low, high];
}

/** True when `status` falls in one of the ranges. */
export function statusExpected(status: number, ranges: readonly StatusRange[]): boolean {
  for (let i = 0; i < ranges.length; i++) {
    const range = ranges[i] as StatusRange;
    if (status >= range[0] && status <= range[1]) return true;
  }
  return false;
}
