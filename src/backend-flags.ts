import { didYouMean } from './config/schema-support.js';
import { ConfigError } from './errors.js';
import { upstreamProtocols, type UpstreamProtocol } from './upstream/protocol.js';
import { BackendTlsError, loadBackendTls } from './upstream/tls.js';

/** Command-line flags about the backends, each checked so a bad value is reported under its flag's name. */

/** The --backend-ca file. */
export function checkedCaFile(file: string): string {
  try {
    loadBackendTls({ ca: file });
  } catch (err) {
    if (err instanceof BackendTlsError) throw new ConfigError(`--backend-ca: ${err.detail}`, { cause: err });
    throw err;
  }
  return file;
}

/** The --backend-protocol value; undefined when the flag is absent. */
export function backendProtocolFlag(value: string | undefined): UpstreamProtocol | undefined {
  if (value === undefined) return undefined;
  if (!(upstreamProtocols as readonly string[]).includes(value)) {
    throw new ConfigError(`--backend-protocol: "${value}" is not one of ${upstreamProtocols.join(', ')}${didYouMean(value, upstreamProtocols)}`);
  }
  return value as UpstreamProtocol;
}
