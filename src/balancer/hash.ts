import { createHash } from 'node:crypto';
import type { Backend } from '../upstream/backend.js';
import { isEligible } from './eligibility.js';
import type { Balancer, PickContext } from './types.js';

/**
 * 32-bit FNV-1a over UTF-16 code units, finished with murmur3's fmix32 so that similar keys
 * spread over all bits. Fixed constants, no seed: every process hashes a key the same way.
 */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Backends ordered by URL, so that the input order never changes a table. */
function byUrl(backends: readonly Backend[]): Backend[] {
  return [...backends].sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
}

/**
 * nginx's ip_hash idea: the client address picks a backend, the same one every time while the
 * list is unchanged. A backend that is not eligible hands over to the next one in URL order.
 * Weights are ignored; use ring-hash or maglev for weighted, minimally disruptive hashing.
 */
export class IpHash implements Balancer {
  private readonly backends: readonly Backend[];

  constructor(backends: readonly Backend[]) {
    this.backends = byUrl(backends);
  }

  pick(ctx: PickContext): Backend | undefined {
    const backends = this.backends;
    const count = backends.length;
    const start = hashString(ctx.clientIp) % count;
    for (let k = 0; k < count; k++) {
      const backend = backends[(start + k) % count] as Backend;
      if (isEligible(backend, ctx)) return backend;
    }
    return undefined;
  }
}

/** Ring points per unit of weight, as ketama: 40 MD5 digests of 4 points each. */
const pointsPerWeight = 160;

/**
 * Ketama-style consistent hashing: each backend owns 160 x weight points on a 32-bit ring
 * (MD5 of `url-n`, four points per digest); a key belongs to the first point at or after its
 * hash. Walking past backends that are not eligible is the same as removing them from the
 * ring, so a backend going down moves only its own keys.
 */
export class RingHash implements Balancer {
  private readonly backends: readonly Backend[];
  private readonly points: Uint32Array;
  private readonly owners: Int32Array;

  constructor(backends: readonly Backend[]) {
    const sorted = byUrl(backends);
    const minWeight = Math.min(...sorted.map((b) => b.weight));
    const ring: { point: number; owner: number }[] = [];
    sorted.forEach((backend, owner) => {
      const digests = Math.max(1, Math.round((pointsPerWeight * backend.weight) / minWeight / 4));
      for (let n = 0; n < digests; n++) {
        const digest = createHash('md5').update(`${backend.url}-${n}`).digest();
        for (let k = 0; k < 4; k++) ring.push({ point: digest.readUInt32LE(k * 4), owner });
      }
    });
    ring.sort((a, b) => a.point - b.point || a.owner - b.owner);
    this.backends = sorted;
    this.points = Uint32Array.from(ring, (entry) => entry.point);
    this.owners = Int32Array.from(ring, (entry) => entry.owner);
  }

  pick(ctx: PickContext): Backend | undefined {
    const points = this.points;
    const count = points.length;
    const hash = hashString(ctx.hashKey ?? ctx.clientIp);
    let low = 0;
    let high = count;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((points[mid] as number) < hash) low = mid + 1;
      else high = mid;
    }
    for (let k = 0; k < count; k++) {
      const backend = this.backends[this.owners[(low + k) % count] as number] as Backend;
      if (isEligible(backend, ctx)) return backend;
    }
    return undefined;
  }
}

/**
 * Maglev hashing (Eisenbud et al., NSDI 2016, section 3.4): a lookup table of 65537 slots that
 * backends fill in turns, each along its own permutation (offset and skip from SHA-256 of its
 * URL). Shares are even to within one slot, removing one of N backends moves about 1/N of the
 * keys, and the table depends only on the set of URLs. Weights set how many turns a backend
 * takes per round. The table covers backends that are up and is rebuilt when one goes down or
 * up (off the request path); a key whose slot is not eligible (excluded by a retry, at max
 * in-flight) takes the next eligible slot.
 */
export class Maglev implements Balancer {
  static readonly tableSize = 65537;
  private readonly backends: readonly Backend[];
  private readonly offsets: Int32Array;
  private readonly skips: Int32Array;
  private table = new Int32Array(Maglev.tableSize).fill(-1);

  constructor(backends: readonly Backend[]) {
    const size = Maglev.tableSize;
    this.backends = byUrl(backends);
    this.offsets = new Int32Array(this.backends.length);
    this.skips = new Int32Array(this.backends.length);
    this.backends.forEach((backend, i) => {
      const digest = createHash('sha256').update(backend.url).digest();
      this.offsets[i] = digest.readUInt32LE(0) % size;
      this.skips[i] = (digest.readUInt32LE(4) % (size - 1)) + 1;
    });
    this.build();
  }

  pick(ctx: PickContext): Backend | undefined {
    const table = this.table;
    const size = Maglev.tableSize;
    const start = hashString(ctx.hashKey ?? ctx.clientIp) % size;
    for (let k = 0; k < size; k++) {
      const owner = table[(start + k) % size] as number;
      if (owner === -1) return undefined;
      const backend = this.backends[owner] as Backend;
      if (isEligible(backend, ctx)) return backend;
    }
    return undefined;
  }

  onBackendState(): void {
    this.build();
  }

  /** The backend owning a table slot, for tests and observers. */
  backendAt(slot: number): Backend | undefined {
    const owner = this.table[slot] ?? -1;
    return owner === -1 ? undefined : this.backends[owner];
  }

  private build(): void {
    const size = Maglev.tableSize;
    const backends = this.backends;
    const up: number[] = [];
    for (let i = 0; i < backends.length; i++) if ((backends[i] as Backend).up) up.push(i);
    const table = new Int32Array(size).fill(-1);
    if (up.length > 0) {
      const maxWeight = Math.max(...up.map((i) => (backends[i] as Backend).weight));
      const next = new Int32Array(backends.length);
      const credit = new Float64Array(backends.length);
      let filled = 0;
      while (filled < size) {
        for (const i of up) {
          credit[i] = (credit[i] as number) + (backends[i] as Backend).weight / maxWeight;
          while ((credit[i] as number) >= 1 && filled < size) {
            credit[i] = (credit[i] as number) - 1;
            let slot = ((this.offsets[i] as number) + (next[i] as number) * (this.skips[i] as number)) % size;
            while ((table[slot] as number) !== -1) {
              next[i] = (next[i] as number) + 1;
              slot = ((this.offsets[i] as number) + (next[i] as number) * (this.skips[i] as number)) % size;
            }
            table[slot] = i;
            next[i] = (next[i] as number) + 1;
            filled++;
          }
          if (filled === size) break;
        }
      }
    }
    this.table = table;
  }
}
