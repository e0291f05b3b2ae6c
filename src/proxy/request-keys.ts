import type { HashKeySpec } from '../upstream/hash-key.js';

/** The first value of header `lowerName` in a raw header list, or undefined. */
export function headerValue(raw: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) return raw[i + 1];
  }
  return undefined;
}

/** The value of cookie `name` from the Cookie header(s) (RFC 6265 section 5.4), or undefined. */
export function cookieValue(raw: readonly string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const field = raw[i] as string;
    if (field.length !== 6 || field.toLowerCase() !== 'cookie') continue;
    const header = raw[i + 1] as string;
    let at = 0;
    while (at < header.length) {
      while (header.charCodeAt(at) === 32 /* space */) at++;
      const end = header.indexOf(';', at);
      const pairEnd = end === -1 ? header.length : end;
      const eq = header.indexOf('=', at);
      if (eq !== -1 && eq < pairEnd && eq - at === name.length && header.startsWith(name, at)) {
        return header.slice(eq + 1, pairEnd).trim();
      }
      at = pairEnd + 1;
    }
  }
  return undefined;
}

/** The hash key of a request: `target` is its origin-form path and query. */
export function hashKeyOf(spec: HashKeySpec, raw: readonly string[], target: string, clientIp: string): string {
  switch (spec.source) {
    case 'header':
      return headerValue(raw, spec.name as string) ?? '';
    case 'cookie':
      return cookieValue(raw, spec.name as string) ?? '';
    case 'path': {
      const query = target.indexOf('?');
      return query === -1 ? target : target.slice(0, query);
    }
    default:
      return clientIp;
  }
}
