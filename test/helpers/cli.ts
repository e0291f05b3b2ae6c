import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { until } from './servers.js';

/** The CLI as compiled by `npm test` (.test-build/src/cli.js), so no `npm run build` is needed. */
export const cliPath = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export interface CliProcess {
  readonly child: ChildProcess;
  /** Exit code and signal, once the process has exited. */
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>;
  stdout(): string;
  stderr(): string;
  /** The JSON log lines written so far. */
  logs(): Record<string, unknown>[];
  /** Waits (bounded) for a log line whose message starts with `prefix`; fails early if the process exits. */
  waitForLog(prefix: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Waits for `Load Balancer started` and returns its port. */
  started(timeoutMs?: number): Promise<number>;
}

/**
 * Runs the CLI with JSON logs. The admin listener (default 127.0.0.1:9901) is turned off unless
 * the arguments say otherwise, so runs never compete for that port. `cleanup` gets a step that
 * kills the process by its pid if the test left it running.
 */
export function spawnCli(args: readonly string[], cleanup: (fn: () => unknown) => void): CliProcess {
  const adminSet = args.some((a) => a.startsWith('--admin') || a === '--no-admin' || a === '--config');
  const child = spawn(process.execPath, [cliPath, ...(adminSet ? [] : ['--no-admin']), '--log-format', 'json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  cleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const logs = (): Record<string, unknown>[] => stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const find = (prefix: string) => logs().find((e) => String(e['msg']).startsWith(prefix));
  const cli: CliProcess = {
    child,
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    logs,
    async waitForLog(prefix, timeoutMs = 10_000) {
      await until(() => find(prefix) !== undefined || child.exitCode !== null, timeoutMs, `log line "${prefix}"`);
      const entry = find(prefix);
      if (entry === undefined) throw new Error(`the CLI exited (${child.exitCode}) before "${prefix}": ${stderr}`);
      return entry;
    },
    async started(timeoutMs = 10_000) {
      return Number((await cli.waitForLog('Load Balancer started', timeoutMs))['port']);
    },
  };
  return cli;
}
