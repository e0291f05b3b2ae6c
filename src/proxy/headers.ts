import type { UpstreamForwarding } from '../upstream/forwarding.js';
import type { Backend } from '../upstream/backend.js';
import type { RawFields } from '../upstream/dispatcher.js';
import { spellsLower } from '../upstream/h1/field-names.js';
import { forwardedElement } from './forwarded.js';
import type { TrustedProxies } from './trusted.js';

/**
 * Header rewriting for both directions, on raw flat arrays ([name, value, name, value, …])
 * so no header object is built per request.
 *
 * Hop-by-hop fields are never forwarded (RFC 9110 section 7.6.1): Connection, the names it
 * lists, and the fields below. Names are only lower-cased when their length matches a field
 * we care about, which keeps the common header free of string work.
 */
const Kind = {
  other: 0,
  hopByHop: 1,
  connection: 2,
  host: 3,
  xForwardedFor: 4,
  xForwardedProto: 5,
  xForwardedHost: 6,
  via: 7,
  expect: 8,
  forwarded: 9,
  te: 10,
} as const;
type Kind = (typeof Kind)[keyof typeof Kind];

const kindByName = new Map<string, Kind>([
  ['connection', Kind.connection],
  ['keep-alive', Kind.hopByHop],
  ['proxy-connection', Kind.hopByHop],
  // Hop-by-hop, but its `trailers` member is forwarded (RFC 9110 §10.1.4): gRPC servers require it.
  ['te', Kind.te],
  // Connection-specific in HTTP/2 (RFC 9113 §8.2.2), a leftover of an h2c upgrade in HTTP/1.1.
  ['http2-settings', Kind.hopByHop],
  ['trailer', Kind.hopByHop],
  ['transfer-encoding', Kind.hopByHop],
  ['upgrade', Kind.hopByHop],
  ['proxy-authorization', Kind.hopByHop],
  ['proxy-authenticate', Kind.hopByHop],
  ['host', Kind.host],
  ['x-forwarded-for', Kind.xForwardedFor],
  ['x-forwarded-proto', Kind.xForwardedProto],
  ['x-forwarded-host', Kind.xForwardedHost],
  ['via', Kind.via],
  ['forwarded', Kind.forwarded],
  // The client's 100-continue was answered by Node's server already; undici refuses the field.
  ['expect', Kind.expect],
]);

/** The names above by length, so kindOf compares a name with a few candidates and never lower-cases it. */
const namesByLength: (readonly [string, Kind])[][] = [];
for (const entry of kindByName) (namesByLength[entry[0].length] ??= []).push(entry);

function kindOf(name: string): Kind {
  const candidates = name.length < namesByLength.length ? namesByLength[name.length] : undefined;
  if (candidates === undefined) return Kind.other;
  for (let i = 0; i < candidates.length; i++) {
    const candidate = candidates[i] as readonly [string, Kind];
    // Names from the backend clients are lower-case already: most often the same string.
    if (name === candidate[0] || spellsLower(name, candidate[0])) return candidate[1];
  }
  return Kind.other;
}

/** Tokens a Connection field lists beyond `close` and `keep-alive`, lower-cased; null when none. */
function extraConnectionTokens(value: string, into: string[] | null): string[] | null {
  // Fast path for the two values nearly every message carries.
  if (spellsLower(value, 'keep-alive') || spellsLower(value, 'close')) return into;
  const parts = value.split(',');
  for (let i = 0; i < parts.length; i++) {
    const token = (parts[i] ?? '').trim().toLowerCase();
    if (token === '' || token === 'close' || token === 'keep-alive') continue;
    (into ??= []).push(token);
  }
  return into;
}

/** Whether a TE value lists the `trailers` member (RFC 9110 §10.1.4), in any case. */
function listsTrailers(value: string): boolean {
  const parts = value.split(',');
  for (let i = 0; i < parts.length; i++) if ((parts[i] ?? '').trim().toLowerCase() === 'trailers') return true;
  return false;
}

function removeNamed(headers: string[], names: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    if (!names.includes(name.toLowerCase())) kept.push(name, headers[i + 1] as string);
  }
  return kept;
}

/** An upstream's forwarding with the trusted proxies of the listener the request came in on. */
export interface ForwardingOptions extends UpstreamForwarding {
  /**
   * Peers whose X-Forwarded-For/-Proto/-Host and Forwarded fields are kept and appended to;
   * from any other peer they are dropped and replaced by ours. null: trust no one.
   */
  readonly trusted: TrustedProxies | null;
}

/**
 * Builds the header list sent to backends, once per request whatever the number of attempts,
 * so X-Forwarded-For and Forwarded gain exactly one entry each. The client's forwarding fields
 * are kept only when its address is a trusted proxy (issue 5); we always append the client to
 * X-Forwarded-For, Forwarded (RFC 7239 section 4) and Via, and set X-Forwarded-Proto and
 * X-Forwarded-Host unless a trusted proxy already did.
 *
 * `host` is the request's validated host (request-host.ts `requestHost`, '' for none): the Host
 * sent upstream with `preserveHost`, our X-Forwarded-Host and Forwarded `host=` all carry it, so
 * an absolute-form target's authority replaces the client's Host (RFC 9112 section 3.2.2).
 */
export function requestHeadersForUpstream(
  raw: readonly string[],
  clientIp: string,
  proto: string,
  httpVersion: string,
  options: ForwardingOptions,
  host: string,
): string[] {
  let out: string[] = [];
  let forwardedFor: string | undefined;
  let forwardedProto: string | undefined;
  let forwardedHost: string | undefined;
  let forwarded: string | undefined;
  let via: string | undefined;
  let hostSent = !options.preserveHost || host === '';
  let hostLine = false;
  let listed: string[] | null = null;
  let teTrailers = false;
  const trusted = options.trusted !== null && options.trusted.contains(clientIp);
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    switch (kindOf(name)) {
      case Kind.other:
        out.push(name, value);
        break;
      case Kind.connection:
        listed = extraConnectionTokens(value, listed);
        break;
      case Kind.host:
        if (hostLine) {
          // A second Host line (requestHost refuses these first) is kept, so undici refuses the request.
          if (options.preserveHost) out.push(name, value);
        } else if (!hostSent) {
          // In the client's place: the validated host, not the value as sent.
          out.push(name, host);
          hostSent = true;
        }
        hostLine = true;
        break;
      case Kind.xForwardedFor:
        if (trusted) forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
        break;
      case Kind.xForwardedProto:
        if (trusted) forwardedProto ??= value;
        break;
      case Kind.xForwardedHost:
        if (trusted) forwardedHost ??= value;
        break;
      case Kind.forwarded:
        if (trusted) forwarded = forwarded === undefined ? value : `${forwarded}, ${value}`;
        break;
      case Kind.via:
        via = via === undefined ? value : `${via}, ${value}`;
        break;
      case Kind.te:
        teTrailers ||= listsTrailers(value);
        break;
      default:
        // hop-by-hop and expect
        break;
    }
  }
  if (listed !== null) {
    // Fields the client named in Connection are hop-by-hop too, the forwarding ones and Via
    // included; our own entries are added after, so naming them cannot remove ours.
    out = removeNamed(out, listed);
    if (listed.includes('x-forwarded-for')) forwardedFor = undefined;
    if (listed.includes('x-forwarded-proto')) forwardedProto = undefined;
    if (listed.includes('x-forwarded-host')) forwardedHost = undefined;
    if (listed.includes('forwarded')) forwarded = undefined;
    if (listed.includes('via')) via = undefined;
    // Host is end to end (RFC 9112 section 3.2): naming it in Connection cannot remove it.
    if (listed.includes('host') && options.preserveHost && host !== '') hostSent = false;
  }
  const ownVia = httpVersion === '1.1' ? options.via11 : `${httpVersion} ${options.viaName}`;
  // An HTTP/1.0 absolute-form request may have no Host field: generate one (RFC 9112 section 3.2.2).
  if (!hostSent) out.push('host', host);
  // Other transfer codings the client takes are about its own connection; `trailers` is end to end.
  if (teTrailers) out.push('te', 'trailers');
  const ownForwarded = forwardedElement(clientIp, proto, host === '' ? undefined : host);
  out.push(
    'x-forwarded-for', forwardedFor === undefined ? clientIp : `${forwardedFor}, ${clientIp}`,
    'x-forwarded-proto', forwardedProto ?? proto,
    'forwarded', forwarded === undefined ? ownForwarded : `${forwarded}, ${ownForwarded}`,
    'via', via === undefined ? ownVia : `${via}, ${ownVia}`,
  );
  if (forwardedHost === undefined && host !== '') forwardedHost = host;
  if (forwardedHost !== undefined) out.push('x-forwarded-host', forwardedHost);
  return out;
}

/** What a backend's own absolute URLs start with: its origins (lower-cased) and base path. */
interface SelfAddress {
  /** `http://host:port`, plus `http://host:80` when the URL left the default port out. */
  readonly origins: readonly string[];
  readonly basePath: string;
}

const selfAddresses = new WeakMap<Backend, SelfAddress>();

/** Built once per backend, on the first response that carries a Location. */
function selfAddressOf(backend: Backend): SelfAddress {
  let self = selfAddresses.get(backend);
  if (self === undefined) {
    const origin = backend.origin.toLowerCase();
    const origins = [origin];
    const defaultPort = origin.startsWith('https:') ? 443 : 80;
    // URL drops a default port, but a backend may well spell it out in its redirects.
    if (backend.port === defaultPort) origins.push(`${origin}:${defaultPort}`);
    self = { origins, basePath: backend.basePath };
    selfAddresses.set(backend, self);
  }
  return self;
}

/**
 * `value` with the backend's own origin and base path (`http://127.0.0.1:9001/base/x`) replaced
 * by the client's view (`PROTO://CLIENT-HOST/x`); any other value, relative ones included, as it
 * is. Without a Host from the client the result is the path alone (RFC 9110 section 10.2.2).
 */
export function rewriteSelfUrl(value: string, backend: Backend, host: string, proto: string): string {
  const self = selfAddressOf(backend);
  for (let i = 0; i < self.origins.length; i++) {
    const origin = self.origins[i] as string;
    if (value.length < origin.length || value.slice(0, origin.length).toLowerCase() !== origin) continue;
    const basePath = self.basePath;
    if (!value.startsWith(basePath, origin.length)) continue;
    const restAt = origin.length + basePath.length;
    const next = value.charCodeAt(restAt);
    // Origin and base path end at a boundary: `/base` covers `/base/x`, not `/basement`, and
    // `:9001` not `:90011`. Then `/`, `?`, `#` or the end.
    if (!(Number.isNaN(next) || next === 0x2f || next === 0x3f || next === 0x23)) continue;
    const rest = next === 0x2f ? value.slice(restAt) : `/${value.slice(restAt)}`;
    return host === '' ? rest : `${proto}://${host}${rest}`;
  }
  return value;
}

/**
 * Converts a backend's raw response headers (strings or undici's Buffers; see RawFields) into the
 * flat string list handed to `res.writeHead`, dropping hop-by-hop fields and appending our Via
 * entry. With `selfOf` (the backend, when its upstream has `rewriteLocation`), `Location` and
 * `Content-Location` naming the backend itself are rewritten for the client (rewriteSelfUrl);
 * `host` is the request's validated host ('' for none) and `proto` the listener's scheme.
 */
export function responseHeadersForClient(raw: RawFields, viaEntry: string, selfOf: Backend | null, host: string, proto: string): string[] {
  let out: string[] = [];
  let via: string | undefined;
  let listed: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const field = raw[i] as Buffer | string;
    // Both backend clients give lower-cased string names; a Buffer is spelled as the backend sent it.
    const name = typeof field === 'string' ? field : field.toString('latin1').toLowerCase();
    const value = (raw[i + 1] as Buffer | string).toString('latin1');
    switch (kindOf(name)) {
      case Kind.connection:
        listed = extraConnectionTokens(value, listed);
        break;
      case Kind.hopByHop:
      case Kind.te:
        break;
      case Kind.via:
        via = via === undefined ? value : `${via}, ${value}`;
        break;
      default:
        if (selfOf !== null && (name === 'location' || name === 'content-location')) out.push(name, rewriteSelfUrl(value, selfOf, host, proto));
        else out.push(name, value);
    }
  }
  if (listed !== null) {
    out = removeNamed(out, listed);
    if (listed.includes('via')) via = undefined;
  }
  out.push('via', via === undefined ? viaEntry : `${via}, ${viaEntry}`);
  return out;
}
