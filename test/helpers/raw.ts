import net from 'node:net';

/** A response read off a raw socket. */
export interface RawResponse {
  readonly status: number;
  /** Status line and header lines, as sent. */
  readonly head: string;
  /** Header fields by lower-cased name, in the order sent. */
  readonly headers: Map<string, string[]>;
  readonly body: Buffer;
}

/** Header fields of a flat [name, value, …] list, by lower-cased name. */
export function fields(flat: readonly (string | Buffer)[]): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (let i = 0; i < flat.length; i += 2) {
    const name = String(flat[i]).toLowerCase();
    const value = String(flat[i + 1]);
    const values = map.get(name);
    if (values === undefined) map.set(name, [value]);
    else values.push(value);
  }
  return map;
}

/**
 * Sends exact bytes to 127.0.0.1:port and reads until the server closes (send
 * `Connection: close`), then splits the first response into head and body.
 */
export function rawExchange(port: number, parts: string | readonly (string | Buffer)[], timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no close within ${timeoutMs} ms`)));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const all = Buffer.concat(chunks);
      const headEnd = all.indexOf('\r\n\r\n');
      if (headEnd === -1) return reject(new Error(`no response head in ${JSON.stringify(all.toString('latin1'))}`));
      const head = all.subarray(0, headEnd).toString('latin1');
      const lines = head.split('\r\n');
      const flat: string[] = [];
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        flat.push(line.slice(0, colon), line.slice(colon + 1).trim());
      }
      resolve({ status: Number((lines[0] ?? '').split(' ')[1]), head, headers: fields(flat), body: all.subarray(headEnd + 4) });
      socket.destroy();
    });
    for (const part of typeof parts === 'string' ? [parts] : parts) socket.write(part);
  });
}

/** `connected`, or the error code of a TCP connect to 127.0.0.1:port (e.g. ECONNREFUSED). */
export function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}
