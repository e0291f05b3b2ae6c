import { ConfigError } from './errors.js';

const durationPattern = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const msPerUnit: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a duration such as `500ms`, `2s`, `1.5m` or `1h` into milliseconds.
 * `what` names the flag or field in the error message.
 */
export function parseDurationMs(text: string, what: string): number {
  const match = durationPattern.exec(text.trim());
  if (match === null) {
    throw new ConfigError(`${what}: "${text}" is not a duration (examples: 500ms, 2s, 1m)`);
  }
  const ms = Number(match[1]) * (msPerUnit[match[2] ?? 'ms'] ?? 1);
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new ConfigError(`${what}: "${text}" must be greater than zero`);
  }
  return Math.round(ms);
}

const sizePattern = /^(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i;
const bytesPerUnit: Readonly<Record<string, number>> = {
  b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
};

/** Parses a size such as `65536`, `64KiB` or `1MiB` (binary units) into bytes. */
export function parseSizeBytes(text: string, what: string): number {
  const match = sizePattern.exec(text.trim());
  if (match === null) throw new ConfigError(`${what}: "${text}" is not a size (examples: 65536, 64KiB, 1MiB)`);
  return Number(match[1]) * (bytesPerUnit[(match[2] ?? 'b').toLowerCase()] ?? 1);
}
