import { ConfigError } from './errors.js';

const durationPattern = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const msPerUnit: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a duration such as `500ms`, `2s`, `1.5m` or `1h` into milliseconds. With `allowZero`
 * (settings where 0 means off) `0`, `0s` and `0ms` give 0. `what` names the flag or field.
 */
export function parseDurationMs(text: string, what: string, allowZero = false): number {
  const trimmed = text.trim();
  if (allowZero && trimmed === '0') return 0;
  const match = durationPattern.exec(trimmed);
  if (match === null) {
    throw new ConfigError(`${what}: "${text}" is not a duration (examples: 500ms, 2s, 1m)`);
  }
  const ms = Number(match[1]) * (msPerUnit[match[2] ?? 'ms'] ?? 1);
  if (allowZero && ms === 0) return 0;
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new ConfigError(`${what}: "${text}" must be greater than zero`);
  }
  return Math.round(ms);
}

// Decimals as in durations (`1.5KiB`). KB/MB/GB are SI (1000^n), KiB/MiB/GiB binary (1024^n);
// a bare k/m/g is refused rather than guessed.
const sizePattern = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;
const bytesPerUnit: Readonly<Record<string, number>> = {
  '': 1, b: 1, kb: 1000, kib: 1024, mb: 1000 ** 2, mib: 1024 ** 2, gb: 1000 ** 3, gib: 1024 ** 3,
};

/** Parses a size such as `65536`, `64KiB`, `1.5MiB` or `10MB` into bytes. */
export function parseSizeBytes(text: string, what: string): number {
  const match = sizePattern.exec(text.trim());
  const unit = (match?.[2] ?? '').toLowerCase();
  const per = bytesPerUnit[unit];
  if (match === null || per === undefined) {
    const unitHint = `write ${match?.[1]}${unit.toUpperCase()}iB for binary units (1024) or ${match?.[1]}${unit.toUpperCase()}B for decimal ones (1000)`;
    const hint = /^[kmg]$/.test(unit) ? ` (${unitHint})` : ' (examples: 65536, 64KiB, 1MiB)';
    throw new ConfigError(`${what}: "${text}" is not a size${hint}`);
  }
  const bytes = Number(match[1]) * per;
  if (!Number.isSafeInteger(bytes)) throw new ConfigError(`${what}: "${text}" is not a whole number of bytes`);
  return bytes;
}

/** `1 backend`, `2 backends`: a count with its noun in the right number. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
