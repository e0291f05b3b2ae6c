/**
 * Lower-cased header names from the raw Buffers an upstream client hands back, without building
 * a string for the common ones: a name on the list below is matched byte by byte (ASCII letters
 * folded, RFC 9110 section 5.1: names are case-insensitive) and the one interned string is
 * returned. Any other name costs one latin1 decode and a toLowerCase.
 */
const commonNames = [
  'accept', 'accept-ch', 'accept-encoding', 'accept-language', 'accept-patch', 'accept-post', 'accept-ranges', 'access-control-allow-credentials',
  'access-control-allow-headers', 'access-control-allow-methods', 'access-control-allow-origin', 'access-control-expose-headers',
  'access-control-max-age', 'age', 'allow', 'alt-svc', 'authorization', 'cache-control', 'cf-cache-status', 'cf-ray', 'connection',
  'content-disposition', 'content-encoding', 'content-language', 'content-length', 'content-location', 'content-range',
  'content-security-policy', 'content-security-policy-report-only', 'content-type', 'cookie', 'cross-origin-embedder-policy',
  'cross-origin-opener-policy', 'cross-origin-resource-policy', 'date', 'etag', 'expect', 'expect-ct', 'expires', 'forwarded', 'grpc-encoding',
  'grpc-message', 'grpc-status', 'host', 'keep-alive', 'last-modified', 'link', 'location', 'nel', 'origin', 'permissions-policy', 'pragma',
  'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'referrer-policy', 'report-to', 'retry-after', 'server', 'server-timing',
  'set-cookie', 'strict-transport-security', 'te', 'timing-allow-origin', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'vary',
  'via', 'www-authenticate', 'x-backend', 'x-cache', 'x-content-type-options', 'x-dns-prefetch-control', 'x-forwarded-for',
  'x-forwarded-host', 'x-forwarded-proto', 'x-frame-options', 'x-powered-by', 'x-request-id', 'x-xss-protection',
] as const;

// Open addressing, linear probing; the table is kept under a quarter full so probes stay short.
const tableBits = 9;
const tableMask = (1 << tableBits) - 1;
const table: (string | undefined)[] = new Array<string | undefined>(1 << tableBits).fill(undefined);

/** ASCII letter case folded; every other byte as it is. */
const lower = (byte: number): number => (byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte);

function hashOfBytes(bytes: Uint8Array): number {
  let hash = bytes.length;
  for (let i = 0; i < bytes.length; i++) hash = Math.imul(hash ^ lower(bytes[i] as number), 0x01000193);
  return (hash ^ (hash >>> tableBits)) & tableMask;
}

function hashOfName(name: string): number {
  let hash = name.length;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  return (hash ^ (hash >>> tableBits)) & tableMask;
}

for (const name of commonNames) {
  let at = hashOfName(name);
  while (table[at] !== undefined) at = (at + 1) & tableMask;
  table[at] = name;
}

function sameName(bytes: Uint8Array, name: string): boolean {
  if (bytes.length !== name.length) return false;
  for (let i = 0; i < bytes.length; i++) if (lower(bytes[i] as number) !== name.charCodeAt(i)) return false;
  return true;
}

/** `name` lower-cased; a common name as its interned string, allocation-free. */
export function headerNameToString(name: Buffer | string): string {
  if (typeof name === 'string') return name.toLowerCase();
  if (name.length <= 40) {
    for (let at = hashOfBytes(name); ; at = (at + 1) & tableMask) {
      const candidate = table[at];
      if (candidate === undefined) break;
      if (sameName(name, candidate)) return candidate;
    }
  }
  return name.toString('latin1').toLowerCase();
}
