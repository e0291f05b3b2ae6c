import { Writable } from 'node:stream';
import { startFromConfig, type ConfigInput, type ConfigStartOptions, type Switchyard } from '../../src/index.js';

/** Starts Switchyard from a config value or file, logs collected in memory (JSON lines). */
export async function startConfigured(
  source: { config: ConfigInput } | { file: string },
  options: ConfigStartOptions = {},
): Promise<Switchyard & { logs: Record<string, unknown>[] }> {
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const lb = await startFromConfig(source, { watch: false, ...options, log: { format: 'json', level: 'info', destination } });
  return Object.assign(lb, { logs });
}

/** A one-listener config on 127.0.0.1:0 with the admin API off unless given. */
export function localConfig(upstreams: ConfigInput['upstreams'], extra: Partial<ConfigInput> = {}): ConfigInput {
  return { listeners: [{ host: '127.0.0.1', port: 0 }], admin: false, upstreams, ...extra };
}
