import { pino, type DestinationStream, type Level } from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export type LogFormat = 'json' | 'pretty';

export interface LogOptions {
  /** Lowest level written. Default `info`. */
  readonly level?: LogLevel;
  /** `json` (one object per line, for machines) or `pretty` (for terminals). Default: pretty on a TTY, else json. */
  readonly format?: LogFormat;
  /** Where lines go. Default: standard output. */
  readonly destination?: NodeJS.WritableStream;
}

export type Logger = pino.Logger;

/** Whether a stream has failed; shared by every logger writing to it. */
export interface StreamGuard {
  failed: boolean;
  /** What the stream is for, in the stderr report; undefined: not reported. */
  name: string | undefined;
}

const guards = new WeakMap<NodeJS.WritableStream, StreamGuard>();

/**
 * Handles write errors of `stream` (EPIPE from a closed pipe, EIO, ENOSPC…) so they never crash
 * the process (issue 9): the first one marks the stream failed, and is reported once on stderr
 * when `name` is given and stderr still works. Node destroys a stream after an error, so lines
 * are dropped from then on rather than until it recovers. Idempotent per stream.
 */
export function guardStream(stream: NodeJS.WritableStream, name?: string): StreamGuard {
  const known = guards.get(stream);
  if (known !== undefined) {
    known.name ??= name;
    return known;
  }
  const created: StreamGuard = { failed: false, name };
  guards.set(stream, created);
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (created.failed) return;
    created.failed = true;
    if (created.name !== undefined && stream !== process.stderr) {
      writeStderr(`switchyard: ${created.name} failed (${err.code ?? err.message}): log lines are dropped from now on; requests are still served\n`);
    }
  });
  return created;
}

/** Writes to stderr unless stderr itself has failed; never throws. */
function writeStderr(text: string): void {
  const guard = guardStream(process.stderr);
  if (guard.failed) return;
  try {
    process.stderr.write(text);
  } catch {
    guard.failed = true;
  }
}

/** Writes `line` to `out` unless it has failed; a synchronous throw counts as a failure. */
function writeGuarded(out: NodeJS.WritableStream, guard: StreamGuard, line: string): void {
  if (guard.failed) return;
  try {
    out.write(line);
  } catch (err) {
    out.emit('error', err);
  }
}

const levelNames: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const omitInPretty = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

/** Formats pino's JSON lines as `HH:MM:SS.mmm LEVEL message key=value …`. */
function prettyStream(out: NodeJS.WritableStream, guard: StreamGuard): DestinationStream {
  return {
    write(line: string): void {
      if (guard.failed) return;
      const entry = JSON.parse(line) as Record<string, unknown>;
      const time = new Date(Number(entry['time'])).toISOString().slice(11, 23);
      let text = `${time} ${(levelNames[Number(entry['level'])] ?? 'INFO').padEnd(5)} ${String(entry['msg'] ?? '')}`;
      for (const key of Object.keys(entry)) {
        if (!omitInPretty.has(key)) text += ` ${key}=${JSON.stringify(entry[key])}`;
      }
      writeGuarded(out, guard, `${text}\n`);
    },
  };
}

/** Passes pino's lines through to `out` until it fails. */
function jsonStream(out: NodeJS.WritableStream, guard: StreamGuard): DestinationStream {
  return {
    write(line: string): void {
      writeGuarded(out, guard, line);
    },
  };
}

/**
 * A pino logger over `destination` (default stdout). A failing destination (a closed pipe, a
 * full disk) loses log lines, never requests: see guardStream.
 */
export function createLogger(options: LogOptions = {}): Logger {
  const out = options.destination ?? process.stdout;
  const isTty = (out as { isTTY?: boolean }).isTTY === true;
  const format = options.format ?? (isTty ? 'pretty' : 'json');
  const level: Level | 'silent' = options.level ?? 'info';
  const guard = guardStream(out, out === process.stdout ? 'log output (stdout)' : 'log output');
  const stream: DestinationStream = format === 'pretty' ? prettyStream(out, guard) : jsonStream(out, guard);
  return pino({ level, base: null, timestamp: pino.stdTimeFunctions.epochTime }, stream);
}
