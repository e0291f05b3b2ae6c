import { ConfigError } from '../errors.js';

/** Where consistent-hashing balancers take their key from. Default: the client address. */
export interface HashKeySpec {
  readonly source: 'client-ip' | 'header' | 'cookie' | 'path';
  /** Header or cookie name; required for those two sources. */
  readonly name?: string;
}

const sources: readonly string[] = ['client-ip', 'header', 'cookie', 'path'];

/** Checks a hash-key spec and lower-cases a header name; a ConfigError names the problem. */
export function checkHashKey(spec: HashKeySpec): HashKeySpec {
  if (!sources.includes(spec.source)) throw new ConfigError(`"${spec.source}" is not one of client-ip, header:NAME, cookie:NAME, path`);
  if (spec.source === 'header' || spec.source === 'cookie') {
    if (spec.name === undefined || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(spec.name)) {
      throw new ConfigError(`a ${spec.source} key needs a valid ${spec.source} name (${spec.source}:NAME)`);
    }
    return { source: spec.source, name: spec.source === 'header' ? spec.name.toLowerCase() : spec.name };
  }
  return { source: spec.source };
}

/** Parses the CLI spelling: `client-ip`, `path`, `header:NAME` or `cookie:NAME`. */
export function parseHashKey(text: string): HashKeySpec {
  const colon = text.indexOf(':');
  const source = colon === -1 ? text : text.slice(0, colon);
  if (colon === -1) return checkHashKey({ source: source as HashKeySpec['source'] });
  return checkHashKey({ source: source as HashKeySpec['source'], name: text.slice(colon + 1) });
}
