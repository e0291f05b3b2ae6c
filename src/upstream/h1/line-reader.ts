import { BadResponseError, HeadersOverflowError } from '../client-errors.js';

/** A chunk-size line with its extensions (RFC 9112 §7.1.1) longer than this is refused. */
export const maxChunkLineBytes = 4096;
const noBytes = Buffer.alloc(0);

/**
 * The CRLF-terminated lines of a response head, a chunk-size line or a trailer section (RFC 9112
 * §2.2), over any split of the bytes: a line cut by the end of a read is carried to the next one,
 * and a section longer than its limit is refused.
 */
export class LineReader {
  /** An incomplete line, copied from earlier reads: its first carryBytes bytes (the rest is room to grow). */
  carry: Buffer | null = null;
  carryBytes = 0;
  /** Bytes of the current head, trailer section or chunk-size line so far. */
  sectionBytes = 0;
  /** Set by the last line() call: the line's bytes without CRLF. */
  lineBuf: Buffer = noBytes;
  lineStart = 0;
  lineEnd = 0;

  /** A new section starts: nothing carried, nothing counted. */
  reset(): void {
    this.sectionBytes = 0;
    this.carry = null;
    this.carryBytes = 0;
  }

  /** The line's buffer is let go: held for a whole body, a 64 KiB read would outlive young GCs. */
  release(): void {
    this.lineBuf = noBytes;
  }

  /**
   * The next line from `off`: sets lineBuf/lineStart/lineEnd (CRLF excluded) and returns the
   * offset after its LF, or -1 when it is incomplete (its bytes are carried to the next read).
   */
  line(buf: Buffer, off: number, limit: number): number {
    const lf = buf.indexOf(0x0a, off);
    if (lf === -1) {
      const carried = this.carryBytes + buf.length - off;
      if (this.sectionBytes + carried > limit) throw overflow(limit);
      this.carry = carryOn(this.carry, this.carryBytes, buf, off, buf.length);
      this.carryBytes = carried;
      return -1;
    }
    let lineBuf = buf;
    let start = off;
    let end = lf;
    if (this.carry !== null) {
      lineBuf = carryOn(this.carry, this.carryBytes, buf, off, lf + 1);
      end = this.carryBytes + lf - off;
      this.carry = null;
      this.carryBytes = 0;
      start = 0;
    }
    this.sectionBytes += end - start + 1;
    if (this.sectionBytes > limit) throw overflow(limit);
    if (end === start || lineBuf[end - 1] !== 0x0d) throw new BadResponseError('a line ends in a bare LF (RFC 9112 §2.2)');
    this.lineBuf = lineBuf;
    this.lineStart = start;
    this.lineEnd = end - 1;
    return lf + 1;
  }
}

function overflow(limit: number): Error {
  return limit === maxChunkLineBytes ? new BadResponseError(`a chunk-size line is longer than ${limit} bytes`) : new HeadersOverflowError(limit);
}

/**
 * `carry` (its first `used` bytes, or null) followed by `src[from, to)`, in `carry` when it has
 * room, else in a buffer twice as large: a line read byte by byte is copied in linear time.
 */
function carryOn(carry: Buffer | null, used: number, src: Buffer, from: number, to: number): Buffer {
  const need = used + to - from;
  let out = carry;
  if (out === null || out.length < need) {
    out = Buffer.allocUnsafe(Math.max(need, out === null ? 256 : out.length * 2));
    if (carry !== null) carry.copy(out, 0, 0, used);
  }
  src.copy(out, used, from, to);
  return out;
}
