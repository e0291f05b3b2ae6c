import { ConfigError } from './errors.js';
import { ListenerTlsError, loadCertificate } from './server/tls-certificates.js';

/**
 * `--tls-cert FILE --tls-key FILE` pairs, in order, each pair's files checked as they are read and
 * a bad one named with its flag.
 */
export function certificatesFromFlags(certs: string | undefined, keys: string | undefined): { cert: string; key: string }[] {
  const certFiles = certs === undefined ? [] : certs.split('\n');
  const keyFiles = keys === undefined ? [] : keys.split('\n');
  if (certFiles.length !== keyFiles.length) throw new ConfigError(`--tls-cert and --tls-key come in pairs: ${certFiles.length} --tls-cert, ${keyFiles.length} --tls-key`);
  return certFiles.map((cert, i) => {
    const files = { cert, key: keyFiles[i] as string };
    try {
      loadCertificate(files, i);
    } catch (err) {
      if (err instanceof ListenerTlsError) throw new ConfigError(`--tls-${err.field}: ${err.detail}`, { cause: err });
      throw err;
    }
    return files;
  });
}
