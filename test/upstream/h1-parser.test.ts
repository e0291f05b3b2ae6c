import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BadResponseError, HeadersOverflowError } from '../../src/upstream/client-errors.js';
import { newHeadMemo } from '../../src/upstream/h1/head-memo.js';
import { keepAliveHintMs } from '../../src/upstream/h1/response-head.js';
import { ResponseParser, type ResponseSink } from '../../src/upstream/h1/response-parser.js';

/** Everything a parser handed on, in order. */
class Recorder implements ResponseSink {
  heads: { status: number; reason: string; fields: string[] }[] = [];
  body: Buffer[] = [];
  trailers: string[] | null | undefined = undefined;
  pauseOnBody = false;
  onResponseHead(status: number, reason: string, fields: string[]): boolean {
    this.heads.push({ status, reason, fields });
    return true;
  }
  onResponseBody(chunk: Buffer): boolean {
    this.body.push(Buffer.from(chunk));
    return !this.pauseOnBody;
  }
  onResponseComplete(trailers: string[] | null): void {
    this.trailers = trailers;
  }
  get text(): string {
    return Buffer.concat(this.body).toString('latin1');
  }
}

interface Parsed {
  rec: Recorder;
  parser: ResponseParser;
  /** Bytes left over after the end of the response. */
  rest: number;
}

/** Feeds `parts` one after the other; `head`: a HEAD request; `upgrade`: it asked for one. */
function parse(parts: readonly (string | Buffer)[], options: { head?: boolean; upgrade?: boolean; max?: number; eof?: boolean } = {}): Parsed {
  const parser = new ResponseParser(options.max ?? 16 * 1024);
  const rec = new Recorder();
  parser.start(rec, options.head === true, options.upgrade === true);
  let rest = 0;
  for (const part of parts) {
    const buf = typeof part === 'string' ? Buffer.from(part, 'latin1') : part;
    const end = parser.execute(buf, 0);
    rest += buf.length - end;
    if (parser.done) break;
  }
  if (options.eof === true) parser.endOfInput();
  return { rec, parser, rest };
}

/** Every split of `text` into two reads, and one byte per read. */
function splits(text: string): string[][] {
  const out: string[][] = [];
  for (let i = 1; i < text.length; i++) out.push([text.slice(0, i), text.slice(i)]);
  out.push([...text]);
  return out;
}

function refuses(text: string | string[], pattern: RegExp, kind: typeof BadResponseError | typeof HeadersOverflowError = BadResponseError, max?: number): void {
  assert.throws(() => parse(Array.isArray(text) ? text : [text], max === undefined ? {} : { max }), (err: Error) => err instanceof kind && pattern.test(err.message), `refused: ${JSON.stringify(text)}`);
}

const withLength = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Custom: a  b \r\nContent-Length: 5\r\n\r\nhello';
const chunked = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;ext=1\r\nhello\r\nA\r\n, world!!!\r\n0\r\nX-Sum: 42\r\nGrpc-Status: 0\r\n\r\n';

describe('framing', () => {
  test('Content-Length: head, names lower-cased, values trimmed, the body; reusable', () => {
    const { rec, parser, rest } = parse([withLength]);
    assert.deepEqual(rec.heads, [{ status: 200, reason: 'OK', fields: ['content-type', 'text/plain', 'x-custom', 'a  b', 'content-length', '5'] }]);
    assert.equal(rec.text, 'hello');
    assert.equal(rec.trailers, null);
    assert.equal(parser.reusable, true);
    assert.equal(rest, 0);
  });

  test('Content-Length over every split into two reads and byte by byte', () => {
    for (const parts of splits(withLength)) {
      const { rec, parser } = parse(parts);
      assert.equal(rec.heads.length, 1);
      assert.deepEqual(rec.heads[0]?.fields, ['content-type', 'text/plain', 'x-custom', 'a  b', 'content-length', '5']);
      assert.equal(rec.text, 'hello');
      assert.equal(parser.done, true);
    }
  });

  test('chunked: extensions skipped, sizes in any case of hex, trailers handed on; every split', () => {
    for (const parts of [[chunked], ...splits(chunked)]) {
      const { rec, parser } = parse(parts);
      assert.equal(rec.text, 'hello, world!!!');
      assert.deepEqual(rec.trailers, ['x-sum', '42', 'grpc-status', '0']);
      assert.equal(parser.done, true);
      assert.equal(parser.reusable, true);
    }
  });

  test('chunked without trailers: complete with null', () => {
    const { rec } = parse(['HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n']);
    assert.equal(rec.text, 'abc');
    assert.equal(rec.trailers, null);
  });

  test('no framing: the body runs until the close, and the connection is not reused', () => {
    const text = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end';
    for (const parts of splits(text)) {
      const { rec, parser } = parse(parts);
      assert.equal(parser.done, false);
      assert.equal(parser.readsUntilClose, true);
      assert.equal(parser.endOfInput(), true);
      assert.equal(rec.text, 'until the end');
      assert.equal(rec.trailers, null);
      assert.equal(parser.reusable, false);
    }
  });

  test('a transfer coding other than chunked last runs until the close (RFC 9112 §6.3)', () => {
    const { rec, parser } = parse(['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz'], { eof: true });
    assert.equal(rec.text, 'xyz');
    assert.equal(parser.reusable, false);
  });

  test('HEAD, 204 and 304 have no body whatever the head says', () => {
    const head = parse(['HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n'], { head: true });
    assert.equal(head.parser.done, true);
    assert.equal(head.rec.text, '');
    for (const status of [204, 304]) {
      const { parser, rest } = parse([`HTTP/1.1 ${status} X\r\nContent-Length: 10\r\n\r\n`]);
      assert.equal(parser.done, true);
      assert.equal(rest, 0);
    }
  });

  test('bytes after a complete response are left over', () => {
    const { rest, parser } = parse([`${withLength}HTTP/1.1 200 OK\r\n`]);
    assert.equal(parser.done, true);
    assert.equal(rest, 17);
  });

  test('an incomplete Content-Length body is not complete at the end of input', () => {
    const { parser } = parse(['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc']);
    assert.equal(parser.endOfInput(), false);
  });

  test('HTTP/1.0 closes unless it says keep-alive; HTTP/1.1 Connection: close is not reused', () => {
    assert.equal(parse(['HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n']).parser.reusable, false);
    assert.equal(parse(['HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n']).parser.reusable, true);
    assert.equal(parse(['HTTP/1.1 200 OK\r\nConnection: x-hop, close\r\nContent-Length: 0\r\n\r\n']).parser.reusable, false);
  });

  test('a status line without a reason, and the same Content-Length twice', () => {
    const { rec } = parse(['HTTP/1.1 200\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nok']);
    assert.equal(rec.heads[0]?.status, 200);
    assert.equal(rec.heads[0]?.reason, '');
    assert.equal(rec.text, 'ok');
  });

  test('a pause stops the parser where it is; running it again goes on', () => {
    const parser = new ResponseParser(16 * 1024);
    const rec = new Recorder();
    rec.pauseOnBody = true;
    parser.start(rec, false, false);
    const buf = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc', 'latin1');
    const end = parser.execute(buf, 0);
    assert.equal(parser.paused, true);
    assert.equal(end, buf.length);
    assert.equal(rec.trailers, undefined, 'not complete while paused');
    parser.execute(Buffer.alloc(0), 0);
    assert.equal(rec.trailers, null);
  });
});

describe('the next response on a connection', () => {
  const first = 'HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\nX-Empty:\r\nX-Pad: a  b\r\n\r\nhello';

  /**
   * What one parser makes of `second` after `first` (lines repeating the first head's reuse its
   * strings); `shared`: `first` went through another parser with the same memo, as on another
   * connection to the same backend.
   */
  function afterFirst(second: string, shared = false): { fields: string[] | undefined; text: string; reusable: boolean } | Error {
    const memo = newHeadMemo();
    const parser = new ResponseParser(16 * 1024, memo);
    const firstParser = shared ? new ResponseParser(16 * 1024, memo) : parser;
    firstParser.start(new Recorder(), false, false);
    firstParser.execute(Buffer.from(first, 'latin1'), 0);
    assert.equal(firstParser.done, true);
    const rec = new Recorder();
    parser.start(rec, false, false);
    try {
      parser.execute(Buffer.from(second, 'latin1'), 0);
    } catch (err) {
      return err as Error;
    }
    return { fields: rec.heads[0]?.fields, text: rec.text, reusable: parser.reusable };
  }

  /** What a new parser makes of `text`. */
  function alone(text: string): { fields: string[] | undefined; text: string; reusable: boolean } | Error {
    try {
      const { rec, parser } = parse([text]);
      return { fields: rec.heads[0]?.fields, text: rec.text, reusable: parser.reusable };
    } catch (err) {
      return err as Error;
    }
  }

  test('parses every variant of the previous head exactly as a new parser does, refusals included', () => {
    const lines = (...fields: string[]) => `HTTP/1.1 200 OK\r\n${fields.map((f) => `${f}\r\n`).join('')}\r\nhello`;
    const same = ['Server: nginx', 'Content-Type: text/plain', 'Content-Length: 5', 'Connection: keep-alive', 'X-Empty:', 'X-Pad: a  b'];
    const variants = [
      first,
      lines(...same),
      lines('SERVER: NGINX', ...same.slice(1)),
      lines('sErVeR: nginx', ...same.slice(1)),
      lines('Server:nginx \t ', ...same.slice(1)),
      lines('Server: \tnginx', ...same.slice(1)),
      lines('Server: nginx2', ...same.slice(1)),
      lines('Server: ngin', ...same.slice(1)),
      lines('Server: nginx x', ...same.slice(1)),
      lines('Servers: nginx', ...same.slice(1)),
      lines('Serve: nginx', ...same.slice(1)),
      lines('Server : nginx', ...same.slice(1)),
      lines('Server: ngi\x01x', ...same.slice(1)),
      lines('Server: nginx\x7f', ...same.slice(1)),
      lines('Server: nginx\x00', ...same.slice(1)),
      lines('Serv\rr: nginx', ...same.slice(1)),
      lines('Serv\x0dr: nginx', ...same.slice(1)),
      lines(' Server: nginx', ...same.slice(1)),
      lines('Server: nginx', 'Content\rType: text/plain', ...same.slice(2)),
      lines('Server: nginx', 'Content-Type: text/plain', 'Content-Length: 4', ...same.slice(3)),
      lines('Server: nginx', 'Content-Type: text/plain', 'Content-Length: 5x', ...same.slice(3)),
      lines('Server: nginx', 'Content-Type: text/plain', 'Content-Length: 5', 'Content-Length: 5', ...same.slice(3)),
      lines('Server: nginx', 'Content-Type: text/plain', 'Content-Length: 5', 'Connection: close', ...same.slice(4)),
      lines(...same.slice(0, 4), 'X-Empty:   ', 'X-Pad: a  b'),
      lines(...same.slice(0, 4), 'X-Empty: a', 'X-Pad: a  b'),
      lines(...same.slice(0, 4), 'X-Empty:', 'X-Pad: a b'),
      lines(...same.slice(0, 4), 'X-Empty:', 'X-Pad: a  b\x01'),
      lines(...same.slice(0, 5)),
      lines(...same, 'X-More: 1'),
      lines(same[1] as string, same[0] as string, ...same.slice(2)),
      lines('Server: nginx', 'Content-Type: text/plain', 'Transfer-Encoding: chunked'),
      'HTTP/1.1 200 OK\r\nServer: nginx\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nServer: nginx\r\nContent-Length: 5\r\n\r\n',
    ];
    for (const text of variants) {
      assert.deepEqual(afterFirst(text), alone(text), JSON.stringify(text));
      assert.deepEqual(afterFirst(text, true), alone(text), `after another connection: ${JSON.stringify(text)}`);
    }
  });
});

describe('interim responses', () => {
  test('103 is handed on, then the final response; every split', () => {
    const text = 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx';
    for (const parts of splits(text)) {
      const { rec } = parse(parts);
      assert.deepEqual(rec.heads.map((h) => h.status), [103, 200]);
      assert.deepEqual(rec.heads[0]?.fields, ['link', '</a.css>; rel=preload']);
      assert.equal(rec.text, 'x');
    }
  });

  test('101 to an upgrade request stops the parser with the bytes after it left over', () => {
    const { rec, parser, rest } = parse(['HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00'], { upgrade: true });
    assert.equal(parser.upgraded, true);
    assert.equal(rec.heads[0]?.status, 101);
    assert.equal(rest, 2);
  });

  test('an unsolicited 101 is refused; an unexpected 100 is an interim response like any other (RFC 9110 §15.2)', () => {
    refuses('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n', /unsolicited 101/);
    const { rec, parser } = parse(['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok']);
    assert.deepEqual(rec.heads.map((h) => h.status), [100, 200]);
    assert.equal(rec.text, 'ok');
    assert.equal(parser.done, true);
  });
});

describe('refusals', () => {
  test('status lines', () => {
    refuses('HTTP/2.0 200 OK\r\n\r\n', /not HTTP\/1.x/);
    refuses('HTTP/1.2 200 OK\r\n\r\n', /not HTTP\/1.0 or HTTP\/1.1/);
    refuses('http/1.1 200 OK\r\n\r\n', /not HTTP\/1.x/);
    refuses('SSH-2.0-OpenSSH_9.6\r\n\r\n', /not HTTP\/1.x/);
    refuses('HTTP/1.1 20 OK\r\n\r\n', /three digits/);
    refuses('HTTP/1.1 2000 OK\r\n\r\n', /three digits/);
    refuses('HTTP/1.1 099 Low\r\n\r\n', /below 100/);
    refuses('HTTP/1.1 200 O\x01K\r\n\r\n', /reason phrase/);
  });

  test('bare LF anywhere in the head', () => {
    refuses('HTTP/1.1 200 OK\n\n', /bare LF/);
    refuses('HTTP/1.1 200 OK\r\nA: b\n\r\n', /bare LF/);
    refuses(['HTTP/1.1 200 OK\r\nA: b', '\n\r\n'], /bare LF/);
  });

  test('field lines', () => {
    refuses('HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n', /obsolete line folding/);
    refuses('HTTP/1.1 200 OK\r\nBad Name: b\r\n\r\n', /not a token/);
    refuses('HTTP/1.1 200 OK\r\nName : b\r\n\r\n', /not a token/);
    refuses('HTTP/1.1 200 OK\r\nNo colon\r\n\r\n', /not a token|without a name/);
    refuses('HTTP/1.1 200 OK\r\n: empty\r\n\r\n', /without a name/);
    for (const ctl of ['\x00', '\x01', '\x1f', '\x7f', '\r']) refuses(`HTTP/1.1 200 OK\r\nA: x${ctl}y\r\n\r\n`, /control character/);
  });

  test('Content-Length: digits only, several different values, with Transfer-Encoding', () => {
    for (const value of ['1a', '+1', '-1', '1,1', '1 1', '0x10', '', '99999999999999999999']) refuses(`HTTP/1.1 200 OK\r\nContent-Length: ${value}\r\n\r\n`, /Content-Length/);
    refuses('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', /different Content-Length/);
    refuses('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', /both Transfer-Encoding and Content-Length/);
  });

  test('chunked framing', () => {
    const head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
    refuses(`${head}zz\r\n`, /hexadecimal size/);
    refuses(`${head}\r\n`, /hexadecimal size/);
    refuses(`${head}5 x\r\n`, /invalid chunk-size line/);
    refuses(`${head}5;a=\x01\r\n`, /control character in a chunk extension/);
    refuses(`${head}ffffffffffffffffff\r\n`, /does not fit/);
    refuses(`${head}3\r\nabcX\r\n`, /not followed by CRLF/);
    refuses(`${head}3\r\nabc\rX`, /not followed by CRLF/);
    refuses(`${head}1;${'x'.repeat(5000)}\r\n`, /chunk-size line is longer/);
    refuses(`${head}0\r\nBad Trailer: 1\r\n\r\n`, /not a token/);
    refuses(`${head}0\r\nX: 1\n\r\n`, /bare LF/);
  });

  test('size limits: the head and the trailer section', () => {
    refuses(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(200)}\r\n\r\n`, /larger than 128 bytes/, HeadersOverflowError, 128);
    // No line end at all: refused as soon as the limit is passed, not at the close.
    refuses(['HTTP/1.1 200 OK\r\nX-Big: ', 'a'.repeat(200)], /larger than 128 bytes/, HeadersOverflowError, 128);
    refuses(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Big: ${'a'.repeat(200)}\r\n\r\n`, /larger than 128 bytes/, HeadersOverflowError, 128);
    // Exactly at the limit passes.
    const head = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n';
    assert.equal(parse([head], { max: head.length }).parser.done, true);
    refuses(head, /larger than/, HeadersOverflowError, head.length - 1);
  });

  test('long lines read byte by byte, near the limit and in pieces of every size, arrive intact', { timeout: 30_000 }, async () => {
    // A line carried over many reads grows its buffer by doubling: byte-by-byte reads of a 1 MiB
    // head cost linear time (the old concat per read was quadratic: 80 s here). The reads yield
    // to the event loop now and then, so the test's timeout can stop a quadratic parser.
    const value = Array.from({ length: 1000 }, (_, i) => String(i % 10)).join('').repeat(1000);
    const text = Buffer.from(`HTTP/1.1 200 OK\r\nX-Long: ${value}\r\nX-Next: ${value.slice(0, 3000)}\r\nContent-Length: 2\r\n\r\nok`, 'latin1');
    for (const size of [1, 7, 4096]) {
      const parser = new ResponseParser(1024 * 1024 + 4096);
      const rec = new Recorder();
      parser.start(rec, false, false);
      for (let i = 0; i < text.length; i += size) {
        parser.execute(text.subarray(i, i + size), 0);
        if (i % (64 * 1024) < size) await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(parser.done, true);
      assert.deepEqual(rec.heads[0]?.fields, ['x-long', value, 'x-next', value.slice(0, 3000), 'content-length', '2']);
      assert.equal(rec.text, 'ok');
    }
    refuses([...'HTTP/1.1 200 OK\r\nX-Big: ', ...'a'.repeat(2000)], /larger than 1024 bytes/, HeadersOverflowError, 1024);
  });
});

test('Keep-Alive hints', () => {
  assert.equal(keepAliveHintMs('timeout=5'), 5000);
  assert.equal(keepAliveHintMs('max=100, Timeout=30'), 30_000);
  assert.equal(keepAliveHintMs('max=100'), -1);
  assert.equal(keepAliveHintMs('timeout=x'), -1);
});
