import { ConfigError } from '../errors.js';

/**
 * The peers whose X-Forwarded-* and Forwarded fields we believe (issue 5): a set of IPv4 and
 * IPv6 addresses and CIDR ranges, parsed once at config time. Matching a peer parses its
 * address text into numbers in a scratch buffer: no allocation per request.
 *
 * IPv4-mapped IPv6 (`::ffff:10.0.0.1`, RFC 4291 section 2.5.5.2) is treated as the IPv4 address
 * it carries, in the list and in peer addresses alike.
 */

/** Scratch for one parsed IPv6 address: eight 16-bit groups. Reused by every parse. */
const groups = new Uint16Array(8);
/** Scratch for one parsed address as four 32-bit words (IPv4 uses words[3]). */
const words = new Uint32Array(4);

/** Parses dotted-quad IPv4 in text[start, end) into an unsigned 32-bit number; -1 if invalid. */
function parseIpv4(text: string, start: number, end: number): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      // No leading zeros: `010` is octal to some parsers, so refuse it (RFC 6943 section 3.1.1).
      if (digits > 0 && octet === 0) return -1;
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else if (c === 46 /* . */ && digits > 0 && dots < 3) {
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + octet;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Parses IPv6 text[start, end) (RFC 4291 section 2.2: `::` once, an IPv4 tail allowed) into
 * `words`; false if invalid.
 */
function parseIpv6(text: string, start: number, end: number): boolean {
  let count = 0;
  let gap = -1;
  let i = start;
  if (end - start >= 2 && text.charCodeAt(i) === 58 && text.charCodeAt(i + 1) === 58) {
    gap = 0;
    i += 2;
  }
  while (i < end) {
    const groupStart = i;
    let value = 0;
    let digits = 0;
    for (; i < end && digits < 5; i++) {
      const d = hexDigit(text.charCodeAt(i));
      if (d < 0) break;
      value = value * 16 + d;
      digits++;
    }
    if (i < end && text.charCodeAt(i) === 46 /* . */) {
      // An IPv4 tail fills the last two groups.
      const v4 = count <= 6 ? parseIpv4(text, groupStart, end) : -1;
      if (v4 < 0) return false;
      groups[count++] = v4 >>> 16;
      groups[count++] = v4 & 0xffff;
      i = end;
      break;
    }
    if (digits === 0 || digits > 4 || count === 8) return false;
    groups[count++] = value;
    if (i === end) break;
    if (text.charCodeAt(i) !== 58 /* : */) return false;
    i++;
    if (i < end && text.charCodeAt(i) === 58) {
      if (gap !== -1) return false;
      gap = count;
      i++;
    } else if (i === end) {
      return false;
    }
  }
  if (gap === -1 ? count !== 8 : count > 7) return false;
  const missing = 8 - count;
  for (let g = 0, from = 0; g < 8; g++) {
    const value = gap !== -1 && g >= gap && g < gap + missing ? 0 : (groups[from++] as number);
    if (g % 2 === 0) words[g >> 1] = value << 16;
    else words[g >> 1] = ((words[g >> 1] as number) | value) >>> 0;
  }
  return true;
}

/** True when `words` holds an IPv4-mapped address `::ffff:a.b.c.d`. */
function isMappedIpv4(): boolean {
  return words[0] === 0 && words[1] === 0 && words[2] === 0xffff;
}

/** Mask of the top `bits` bits of a 32-bit word, for bits in 0..32. */
function topBits(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffff;
  return (0xffffffff << (32 - bits)) >>> 0;
}

export class TrustedProxies {
  /** IPv4 ranges: network, mask, network, mask, … */
  private readonly v4: Uint32Array;
  /** IPv6 ranges: four network words then four mask words per range. */
  private readonly v6: Uint32Array;

  /** `entries`: addresses or CIDR ranges, e.g. `10.0.0.0/8`, `127.0.0.1`, `2001:db8::/32`, `::1`. */
  constructor(entries: readonly string[]) {
    const v4: number[] = [];
    const v6: number[] = [];
    for (const entry of entries) {
      const problem = addRange(entry, v4, v6);
      if (problem !== null) throw new ConfigError(`"${entry}" is not an IP address or CIDR range: ${problem}`);
    }
    this.v4 = Uint32Array.from(v4);
    this.v6 = Uint32Array.from(v6);
  }

  /** Whether `address` (a socket's remoteAddress, with or without `::ffff:`) is trusted. */
  contains(address: string): boolean {
    const end = address.indexOf('%') === -1 ? address.length : address.indexOf('%');
    if (address.indexOf(':') === -1) {
      const v4 = parseIpv4(address, 0, end);
      return v4 >= 0 && this.containsIpv4(v4);
    }
    if (!parseIpv6(address, 0, end)) return false;
    if (isMappedIpv4()) return this.containsIpv4(words[3] as number);
    const v6 = this.v6;
    for (let r = 0; r < v6.length; r += 8) {
      if (
        ((words[0] as number) & (v6[r + 4] as number)) >>> 0 === v6[r] &&
        ((words[1] as number) & (v6[r + 5] as number)) >>> 0 === v6[r + 1] &&
        ((words[2] as number) & (v6[r + 6] as number)) >>> 0 === v6[r + 2] &&
        ((words[3] as number) & (v6[r + 7] as number)) >>> 0 === v6[r + 3]
      ) {
        return true;
      }
    }
    return false;
  }

  private containsIpv4(address: number): boolean {
    const v4 = this.v4;
    for (let r = 0; r < v4.length; r += 2) {
      if ((address & (v4[r + 1] as number)) >>> 0 === v4[r]) return true;
    }
    return false;
  }
}

/** Parses one entry into `v4` or `v6`; the problem in words, or null when fine. */
function addRange(entry: string, v4: number[], v6: number[]): string | null {
  const text = entry.trim();
  const slash = text.indexOf('/');
  const end = slash === -1 ? text.length : slash;
  let bits = -1;
  if (slash !== -1) {
    const prefix = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefix)) return `prefix length "${prefix}" is not a number`;
    bits = Number(prefix);
  }
  if (text.indexOf(':') === -1) {
    const address = parseIpv4(text, 0, end);
    if (address < 0) return 'not a valid IPv4 address';
    if (bits > 32) return 'an IPv4 prefix length is at most 32';
    pushIpv4(v4, address, bits === -1 ? 32 : bits);
    return null;
  }
  if (!parseIpv6(text, 0, end)) return 'not a valid IPv6 address';
  if (bits > 128) return 'an IPv6 prefix length is at most 128';
  if (bits === -1) bits = 128;
  if (isMappedIpv4() && bits >= 96) {
    pushIpv4(v4, words[3] as number, bits - 96);
    return null;
  }
  for (let w = 0; w < 4; w++) v6.push(((words[w] as number) & topBits(bits - 32 * w)) >>> 0);
  for (let w = 0; w < 4; w++) v6.push(topBits(bits - 32 * w));
  return null;
}

function pushIpv4(v4: number[], address: number, bits: number): void {
  const mask = topBits(bits);
  v4.push((address & mask) >>> 0, mask);
}

/** The trusted set for a list of entries; null when the list is empty or absent (trust no one). */
export function trustedProxiesFrom(entries: readonly string[] | undefined): TrustedProxies | null {
  return entries === undefined || entries.length === 0 ? null : new TrustedProxies(entries);
}

/** The problem with one entry, or null: for config validation, which reports it with its position. */
export function trustedProxyProblem(entry: string): string | null {
  return addRange(entry, [], []);
}
