import http2 from 'node:http2';
import net from 'node:net';

/**
 * A raw HTTP/2 client for what well-behaved clients refuse to send: connection-specific fields,
 * streams opened and reset in a loop. Frames are written by hand (RFC 9113 section 4.1), header
 * blocks as HPACK literals without indexing (RFC 7541 section 6.2.2).
 */

export const frameType = { data: 0, headers: 1, rstStream: 3, settings: 4, ping: 6, goaway: 7, windowUpdate: 8 } as const;
export const { NGHTTP2_PROTOCOL_ERROR, NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR } = http2.constants;

const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

function hpackInteger(value: number, prefixBits: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [value];
  const out = [max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest & 127) | 128);
    rest >>= 7;
  }
  out.push(rest);
  return out;
}

function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  return Buffer.concat([Buffer.from(hpackInteger(bytes.length, 7)), bytes]);
}

/** A HEADERS frame (END_HEADERS, and END_STREAM unless `endStream` is false) with these fields in order. */
export function headersFrame(stream: number, fields: readonly (readonly [string, string])[], endStream = true): Buffer {
  const block = Buffer.concat(fields.flatMap(([name, value]) => [Buffer.from([0]), hpackString(name), hpackString(value)]));
  return frame(frameType.headers, 0x4 | (endStream ? 0x1 : 0), stream, block);
}

export function rstStreamFrame(stream: number, code: number = NGHTTP2_CANCEL): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code);
  return frame(frameType.rstStream, 0, stream, payload);
}

/** A raw HTTP/2 connection over cleartext (prior knowledge): write frames, read the server's. */
export class RawH2 {
  readonly socket: net.Socket;
  readonly frames: Frame[] = [];
  private pending = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 9) {
        const length = this.pending.readUIntBE(0, 3);
        if (this.pending.length < 9 + length) break;
        this.frames.push({ type: this.pending[3] as number, flags: this.pending[4] as number, stream: this.pending.readUInt32BE(5) & 0x7fffffff, payload: this.pending.subarray(9, 9 + length) });
        this.pending = this.pending.subarray(9 + length);
      }
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  /**
   * Connects, sends the preface and an empty SETTINGS frame. `prefaceParts`: the preface written
   * in these pieces instead, each in its own TCP segment (a short pause after each).
   */
  static async connect(port: number, prefaceParts?: readonly string[]): Promise<RawH2> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const raw = new RawH2(socket);
    if (prefaceParts === undefined) {
      socket.write(Buffer.concat([preface, frame(frameType.settings, 0, 0)]));
      return raw;
    }
    socket.setNoDelay(true);
    for (const part of prefaceParts) {
      socket.write(part);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    socket.write(frame(frameType.settings, 0, 0));
    return raw;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  write(bytes: Buffer): boolean {
    return this.socket.write(bytes);
  }

  /** Waits until `predicate` holds for the frames so far (or the connection closed), at most `timeoutMs`. */
  async until(predicate: (frames: readonly Frame[]) => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.frames)) {
      if (this.closed) throw new Error('connection closed before the frames awaited arrived');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for frames');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The GOAWAY frame's error code, or undefined when none came. */
  goawayCode(): number | undefined {
    const goaway = this.frames.find((f) => f.type === frameType.goaway);
    return goaway?.payload.readUInt32BE(4);
  }

  close(): void {
    this.socket.destroy();
  }
}
