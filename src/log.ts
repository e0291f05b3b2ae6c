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

const levelNames: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const omitInPretty = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

/** Formats pino's JSON lines as `HH:MM:SS.mmm LEVEL message key=value …`. */
function prettyStream(out: NodeJS.WritableStream): DestinationStream {
  return {
    write(line: string): void {
      const entry = JSON.parse(line) as Record<string, unknown>;
      const time = new Date(Number(entry['time'])).toISOString().slice(11, 23);
      let text = `${time} ${(levelNames[Number(entry['level'])] ?? 'INFO').padEnd(5)} ${String(entry['msg'] ?? '')}`;
      for (const key of Object.keys(entry)) {
        if (!omitInPretty.has(key)) text += ` ${key}=${JSON.stringify(entry[key])}`;
      }
      out.write(`${text}\n`);
    },
  };
}

export function createLogger(options: LogOptions = {}): Logger {
  const out = options.destination ?? process.stdout;
  const isTty = (out as { isTTY?: boolean }).isTTY === true;
  const format = options.format ?? (isTty ? 'pretty' : 'json');
  const level: Level | 'silent' = options.level ?? 'info';
  const stream: DestinationStream = format === 'pretty' ? prettyStream(out) : (out as DestinationStream);
  return pino({ level, base: null, timestamp: pino.stdTimeFunctions.epochTime }, stream);
}
