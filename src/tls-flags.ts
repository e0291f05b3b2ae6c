import { ConfigError } from './errors.js';
import { ListenerTlsError, loadCertificate } from './server/tls-certificates.js';
import { BackendTlsError, loadBackendTls } from './upstream/tls.js';

/** TLS files named on the command line, checked as they are read so a bad one is reported under its flag. */

/** The --backend-ca file, checked here so a bad one is reported under the flag's name. */
export function checkedCaFile(file: string): string {
  try {
    loadBackendTls({ ca: file });
  } catch (err) {
    if (err instanceof BackendTlsError) throw new ConfigError(`--backend-ca: ${err.detail}`, { cause: err });
    throw err;
  }
  return file;
}

/** `--tls-cert FILE --tls-key FILE` pairs, in order, each pair's files checked and named with its flag. */
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
