import type { IncomingMessage } from 'node:http';

/**
 * The deadline a gRPC client sent in `grpc-timeout` (PROTOCOL-HTTP2.md: 1-8 digits and a unit,
 * H M S m u n), in ms; -1 when the request carries none or a malformed one.
 */
export function grpcTimeoutMs(req: IncomingMessage): number {
  const value = req.headers['grpc-timeout'];
  if (typeof value !== 'string' || !/^\d{1,8}[HMSmun]$/.test(value)) return -1;
  const amount = Number(value.slice(0, -1));
  switch (value.charAt(value.length - 1)) {
    case 'H':
      return amount * 3_600_000;
    case 'M':
      return amount * 60_000;
    case 'S':
      return amount * 1000;
    case 'm':
      return amount;
    case 'u':
      return Math.ceil(amount / 1000);
    default:
      return Math.ceil(amount / 1_000_000);
  }
}

/** Past the deadline the client cancels the call itself; the proxy's timers wait this much longer. */
const deadlineSlackMs = 1000;

/**
 * The body-idle timeout for an attempt: the upstream's, or for a gRPC call with a deadline the
 * time left until it (plus a little), when that is longer. A long-lived stream within its deadline
 * is the client's to end; without a deadline the upstream's limit stands. 0 stays off.
 */
export function bodyIdleMs(req: IncomingMessage, upstreamMs: number, arrivalMs: number, nowMs: number): number {
  if (upstreamMs === 0) return 0;
  const timeoutMs = grpcTimeoutMs(req);
  if (timeoutMs < 0) return upstreamMs;
  return Math.max(upstreamMs, timeoutMs - (nowMs - arrivalMs) + deadlineSlackMs);
}

/**
 * The grpc-timeout to send upstream when `leftMs` of the client's deadline are left: the time
 * already spent in the proxy (a wait in the queue, earlier attempts) is taken off, so the
 * backend's deadline is the client's. In ms while that fits the 8 digits allowed, else in seconds.
 */
export function grpcTimeoutLeft(leftMs: number): string {
  const ms = Math.max(0, Math.floor(leftMs));
  return ms <= 99_999_999 ? `${ms}m` : `${Math.min(Math.floor(ms / 1000), 99_999_999)}S`;
}

/** Replaces the value of the grpc-timeout field in a flat header list (name, value, …). */
export function setGrpcTimeout(headers: string[], value: string): void {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    if (name.length === 12 && name.toLowerCase() === 'grpc-timeout') headers[i + 1] = value;
  }
}
