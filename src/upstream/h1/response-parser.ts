import { BadResponseError } from '../client-errors.js';
import { maxInterimResponses } from '../protocol.js';
import { newHeadMemo, recallHead, rememberHead, type HeadMemo } from './head-memo.js';
import { bodyFraming, framedByClose, framedByLength, framedChunked, resetHead, reusableAfter, type HeadFacts } from './response-head.js';
import { LineReader, maxChunkLineBytes } from './line-reader.js';
import { parseChunkSize, parseFieldLine, parseStatusLine } from './response-lines.js';

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
  private readonly lines = new LineReader();
  private remaining = 0;
  private interim = 0;
  private fields: string[] = [];
  readonly head: HeadFacts = { minor: 1, status: 0, reason: '', contentLength: -1, transferEncoding: '', close: false, keepAlive: false, keepAliveHint: '', previousFields: noFields };
  /** The connection may carry another request after this response. */
  reusable = false;
  /** The last execute() stopped because the sink asked to pause. */
  paused = false;
  /** The response was a 101 to an upgrade request: the bytes after its head belong to the new protocol. */
  upgraded = false;

  /** Shared by the parsers of one backend's connections, so an idle connection keeps no fields. */
  private readonly memo: HeadMemo;
  /** Where the current head started in the buffer it came in; -1: it was carried across reads. */
  private headFrom = -1;

  constructor(maxHeaderBytes: number, memo: HeadMemo = newHeadMemo()) {
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
    this.lines.reset();
    this.fields = noFields;
    this.head.previousFields = noFields;
  }

  get done(): boolean {
    return this.state === finished;
  }

  /** Nothing of a response has arrived yet. */
  get idle(): boolean {
    return this.state === statusLine && this.lines.sectionBytes === 0 && this.lines.carry === null;
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
    // A head begun in an earlier read, even one that ended at a line's end, is not whole in this one.
    this.headFrom = -1;
    let off = offset;
    const length = buf.length;
    while (off < length || this.state === lengthBody || this.state === chunkData) {
      switch (this.state) {
        case statusLine:
        case fieldLines:
        case trailerLines: {
          if (this.state === statusLine && this.lines.carry === null) {
            // The same bytes as a head a parser of this backend accepted: the same parse.
            const recalled = recallHead(this.memo, buf, off, this.head);
            if (recalled !== -1) {
              off += recalled;
              this.fields = this.memo.headFields.slice();
              this.state = fieldLines;
              this.endOfSection();
              if (this.paused || this.state === finished) return off;
              break;
            }
            this.headFrom = off;
          }
          const lines = this.lines;
          const next = lines.line(buf, off, this.maxHeaderBytes);
          if (next === -1) return length;
          off = next;
          const lineBuf = lines.lineBuf;
          lines.release();
          if (lineBuf !== buf) this.headFrom = -1;
          if (this.state === statusLine) {
            parseStatusLine(this.head, lineBuf, lines.lineStart, lines.lineEnd);
            this.state = fieldLines;
          } else if (lines.lineStart === lines.lineEnd) {
            if (this.state === fieldLines && this.headFrom !== -1 && this.head.status >= 200) rememberHead(this.memo, buf, this.headFrom, off, this.head, this.fields);
            this.endOfSection();
          } else {
            parseFieldLine(lineBuf, lines.lineStart, lines.lineEnd, this.fields, this.state === fieldLines ? this.head : null);
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
          const next = this.lines.line(buf, off, maxChunkLineBytes);
          if (next === -1) return length;
          off = next;
          this.chunkSizeLine();
          this.lines.release();
          break;
        }
        case chunkDataCr:
        case chunkDataLf: {
          const expected = this.state === chunkDataCr ? 0x0d : 0x0a;
          if (buf[off] !== expected) throw new BadResponseError('chunk data is not followed by CRLF (RFC 9112 §7.1)');
          off++;
          if (this.state === chunkDataCr) this.state = chunkDataLf;
          else this.state = chunkSize;
          this.lines.sectionBytes = 0;
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
    this.lines.reset();
    this.fields = [];
    resetHead(this.head);
    this.head.previousFields = this.memo.fields;
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
    this.lines.sectionBytes = 0;
    // A chunked body's trailer section comes in a new array; else the fields are let go now.
    this.fields = this.state === chunkSize ? [] : noFields;
    if (!sink.onResponseHead(status, head.reason, fields)) this.paused = true;
  }

  private chunkSizeLine(): void {
    const lines = this.lines;
    const size = parseChunkSize(lines.lineBuf, lines.lineStart, lines.lineEnd);
    lines.sectionBytes = 0;
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
