import { BadResponseError, HeadersOverflowError } from '../client-errors.js';
import { maxInterimResponses } from '../protocol.js';
import { bodyFraming, framedByClose, framedByLength, framedChunked, resetHead, reusableAfter, type FieldMemo, type HeadFacts } from './response-head.js';
import { carryOn, parseChunkSize, parseFieldLine, parseStatusLine } from './response-lines.js';

/** What the parser hands on; a false return pauses it (execute returns) until the caller runs it again. */
export interface ResponseSink {
  /** An interim (1xx) or the final head; names lower-cased, flat [name, value, …]. */
  onResponseHead(status: number, reason: string, fields: string[]): boolean;
  onResponseBody(chunk: Buffer): boolean;
  /** Trailer fields of a chunked body, flat as the head's; null when none. */
  onResponseComplete(trailers: string[] | null): void;
}

const statusLine = 0;
const fieldLines = 1;
const lengthBody = 2;
const chunkSize = 3;
const chunkData = 4;
const chunkDataCr = 5;
const chunkDataLf = 6;
const trailerLines = 7;
const untilClose = 8;
/** The response is complete, the connection upgraded (101), or the parser was stopped. */
const finished = 9;

/** A chunk-size line with its extensions (RFC 9112 §7.1.1) longer than this is refused. */
const maxChunkLineBytes = 4096;
const noBytes = Buffer.alloc(0);
/** A finished parser's fields: never pushed to (a head's parse starts with a new array). */
const noFields: string[] = [];

/**
 * An incremental HTTP/1.1 response parser (RFC 9112) over any split of the bytes: head (status
 * line and field lines, each ending in CRLF), then the body framed by Content-Length, chunked
 * coding (with a trailer section) or the connection's close. One parser per connection, reset
 * per request. Malformed input throws BadResponseError or HeadersOverflowError.
 */
export class ResponseParser {
  readonly maxHeaderBytes: number;
  private state = finished;
  private sink: ResponseSink | null = null;
  /** The request was HEAD (no body whatever the head says) / asked for an upgrade. */
  private headRequest = false;
  private upgradeRequest = false;
  /** An incomplete line, copied from earlier reads: its first carryBytes bytes (the rest is room to grow). */
  private carry: Buffer | null = null;
  private carryBytes = 0;
  /** Bytes of the current head, trailer section or chunk-size line so far. */
  private sectionBytes = 0;
  private remaining = 0;
  private interim = 0;
  private fields: string[] = [];
  /** Set by the last line() call: the line's bytes without CRLF. */
  private lineBuf: Buffer = noBytes;
  private lineStart = 0;
  private lineEnd = 0;
  readonly head: HeadFacts = { minor: 1, status: 0, reason: '', contentLength: -1, transferEncoding: '', close: false, keepAlive: false, keepAliveHint: '', previousFields: noFields };
  /** The connection may carry another request after this response. */
  reusable = false;
  /** The last execute() stopped because the sink asked to pause. */
  paused = false;
  /** The response was a 101 to an upgrade request: the bytes after its head belong to the new protocol. */
  upgraded = false;

  /** Shared by the parsers of one backend's connections, so an idle connection keeps no fields. */
  private readonly memo: FieldMemo;

  constructor(maxHeaderBytes: number, memo: FieldMemo = { fields: [] }) {
    this.maxHeaderBytes = maxHeaderBytes;
    this.memo = memo;
  }

  /** Starts reading the response to a new request. */
  start(sink: ResponseSink, headRequest: boolean, upgradeRequest: boolean): void {
    this.sink = sink;
    this.headRequest = headRequest;
    this.upgradeRequest = upgradeRequest;
    this.upgraded = false;
    this.paused = false;
    this.reusable = false;
    this.interim = 0;
    this.startHead();
  }

  /** No more callbacks (the request was aborted). */
  stop(): void {
    this.state = finished;
    this.sink = null;
    this.carry = null;
    this.carryBytes = 0;
    this.fields = noFields;
    this.head.previousFields = noFields;
  }

  get done(): boolean {
    return this.state === finished;
  }

  /** Nothing of a response has arrived yet. */
  get idle(): boolean {
    return this.state === statusLine && this.sectionBytes === 0 && this.carry === null;
  }

  /** The body runs until the connection closes. */
  get readsUntilClose(): boolean {
    return this.state === untilClose;
  }

  /** The connection closed: completes a body framed by the close; false when the response is incomplete. */
  endOfInput(): boolean {
    if (this.state !== untilClose) return this.state === finished;
    this.complete(null);
    return true;
  }

  /** Parses `buf` from `offset`; returns where it stopped (the end, a pause, or the end of the response). */
  execute(buf: Buffer, offset: number): number {
    this.paused = false;
    let off = offset;
    const length = buf.length;
    while (off < length || this.state === lengthBody || this.state === chunkData) {
      switch (this.state) {
        case statusLine:
        case fieldLines:
        case trailerLines: {
          const next = this.line(buf, off, this.maxHeaderBytes);
          if (next === -1) return length;
          off = next;
          // The line's buffer is let go at once: held for the whole body, a read buffer of 64 KiB
          // would outlive young-generation GCs and cost a full one to free.
          const lineBuf = this.lineBuf;
          this.lineBuf = noBytes;
          if (this.state === statusLine) {
            parseStatusLine(this.head, lineBuf, this.lineStart, this.lineEnd);
            this.state = fieldLines;
          } else if (this.lineStart === this.lineEnd) {
            this.endOfSection();
          } else {
            parseFieldLine(lineBuf, this.lineStart, this.lineEnd, this.fields, this.state === fieldLines ? this.head : null);
          }
          break;
        }
        case lengthBody:
        case chunkData: {
          if (this.remaining === 0) {
            if (this.state === lengthBody) {
              this.complete(null);
              return off;
            }
            this.state = chunkDataCr;
            break;
          }
          if (off === length) return off;
          const n = Math.min(length - off, this.remaining);
          this.remaining -= n;
          off += n;
          if (!this.body(n === length ? buf : buf.subarray(off - n, off))) return off;
          break;
        }
        case chunkSize: {
          const next = this.line(buf, off, maxChunkLineBytes);
          if (next === -1) return length;
          off = next;
          this.chunkSizeLine();
          this.lineBuf = noBytes;
          break;
        }
        case chunkDataCr:
        case chunkDataLf: {
          const expected = this.state === chunkDataCr ? 0x0d : 0x0a;
          if (buf[off] !== expected) throw new BadResponseError('chunk data is not followed by CRLF (RFC 9112 §7.1)');
          off++;
          if (this.state === chunkDataCr) this.state = chunkDataLf;
          else this.state = chunkSize;
          this.sectionBytes = 0;
          break;
        }
        case untilClose:
          this.body(off === 0 ? buf : buf.subarray(off));
          return length;
        default:
          return off;
      }
      if (this.paused || this.state === finished) return off;
    }
    return off;
  }

  private body(chunk: Buffer): boolean {
    if ((this.sink as ResponseSink).onResponseBody(chunk)) return true;
    this.paused = true;
    return false;
  }

  private startHead(): void {
    this.state = statusLine;
    this.sectionBytes = 0;
    this.carry = null;
    this.carryBytes = 0;
    this.fields = [];
    resetHead(this.head);
    this.head.previousFields = this.memo.fields;
  }

  /**
   * The next line from `off`: sets lineBuf/lineStart/lineEnd (CRLF excluded) and returns the
   * offset after its LF, or -1 when it is incomplete (its bytes are carried to the next read).
   */
  private line(buf: Buffer, off: number, limit: number): number {
    const lf = buf.indexOf(0x0a, off);
    if (lf === -1) {
      const carried = this.carryBytes + buf.length - off;
      if (this.sectionBytes + carried > limit) throw this.overflow(limit);
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
    if (this.sectionBytes > limit) throw this.overflow(limit);
    if (end === start || lineBuf[end - 1] !== 0x0d) throw new BadResponseError('a line ends in a bare LF (RFC 9112 §2.2)');
    this.lineBuf = lineBuf;
    this.lineStart = start;
    this.lineEnd = end - 1;
    return lf + 1;
  }

  private overflow(limit: number): Error {
    return limit === maxChunkLineBytes ? new BadResponseError(`a chunk-size line is longer than ${limit} bytes`) : new HeadersOverflowError(limit);
  }

  private endOfSection(): void {
    const sink = this.sink as ResponseSink;
    if (this.state === trailerLines) {
      this.complete(this.fields.length === 0 ? null : this.fields);
      return;
    }
    const head = this.head;
    const status = head.status;
    const fields = this.fields;
    if (status < 200) {
      if (status === 101 && this.upgradeRequest) {
        this.state = finished;
        this.upgraded = true;
        sink.onResponseHead(status, head.reason, fields);
        return;
      }
      // A 101 we did not ask for would change the protocol: refused. An unexpected 100 is one more
      // interim response, which a client must parse (RFC 9110 §15.2); the relay drops it.
      if (status === 101) throw new BadResponseError('an unsolicited 101 Switching Protocols');
      // Each is handed on (a 103 to the client, which has no backpressure): a flood is refused.
      if (++this.interim > maxInterimResponses) throw new BadResponseError(`more than ${maxInterimResponses} interim responses`);
      this.startHead();
      sink.onResponseHead(status, head.reason, fields);
      return;
    }
    const noBody = this.headRequest || status === 204 || status === 304;
    const framing = bodyFraming(head, noBody);
    this.state = framing === framedChunked ? chunkSize : framing === framedByClose ? untilClose : lengthBody;
    this.reusable = reusableAfter(head, framing, noBody);
    this.remaining = framing === framedByLength && !noBody ? head.contentLength : 0;
    this.memo.fields = fields;
    this.sectionBytes = 0;
    // A chunked body's trailer section comes in a new array; else the fields are let go now.
    this.fields = this.state === chunkSize ? [] : noFields;
    if (!sink.onResponseHead(status, head.reason, fields)) this.paused = true;
  }

  private chunkSizeLine(): void {
    const size = parseChunkSize(this.lineBuf, this.lineStart, this.lineEnd);
    this.sectionBytes = 0;
    if (size === 0) {
      this.state = trailerLines;
      return;
    }
    this.remaining = size;
    this.state = chunkData;
  }

  private complete(trailers: string[] | null): void {
    this.state = finished;
    // What an idle connection keeps of its last response: nothing (the memo has the fields).
    this.fields = noFields;
    this.head.previousFields = noFields;
    (this.sink as ResponseSink).onResponseComplete(trailers);
  }
}
