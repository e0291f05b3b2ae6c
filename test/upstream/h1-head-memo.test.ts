import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newHeadMemo, recallHead, rememberHead, type HeadMemo } from '../../src/upstream/h1/head-memo.js';
import { ResponseParser, type ResponseSink } from '../../src/upstream/h1/response-parser.js';

/**
 * The head memo (issue 12): a head that repeats, byte for byte, a final head a parser of the same
 * backend accepted is not parsed again. What the sink gets must be what a parse gives.
 */
class Sink implements ResponseSink {
  heads: { status: number; fields: string[] }[] = [];
  body = '';
  complete = false;
  onResponseHead(status: number, _reason: string, fields: string[]): boolean {
    this.heads.push({ status, fields });
    return true;
  }
  onResponseBody(chunk: Buffer): boolean {
    this.body += chunk.toString('latin1');
    return true;
  }
  onResponseComplete(): void {
    this.complete = true;
  }
}

/** One response through a parser sharing `memo`, in reads of `split` bytes (0: one read). */
function respond(memo: HeadMemo, text: string, options: { head?: boolean; split?: number } = {}): { sink: Sink; parser: ResponseParser } {
  const parser = new ResponseParser(16 * 1024, memo);
  const sink = new Sink();
  parser.start(sink, options.head === true, false);
  const bytes = Buffer.from(text, 'latin1');
  const step = options.split ?? 0;
  if (step === 0) parser.execute(bytes, 0);
  else for (let i = 0; i < bytes.length; i += step) parser.execute(bytes.subarray(i, i + step), 0);
  return { sink, parser };
}

const head = 'HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Wed, 02 Dec 2026 02:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n';
const fields = ['server', 'nginx', 'date', 'Wed, 02 Dec 2026 02:00:00 GMT', 'content-type', 'text/plain', 'content-length', '5', 'connection', 'keep-alive'];

test('a repeated head is recalled: the same fields and framing, and a copy the sink may change', () => {
  const memo = newHeadMemo();
  const first = respond(memo, `${head}hello`);
  assert.deepEqual(first.sink.heads[0]?.fields, fields);
  assert.notEqual(memo.bytes, null, 'remembered');
  // The sink changes its fields: the next recall must not see it.
  first.sink.heads[0]?.fields.splice(0, 4, 'x-changed', 'yes');
  const second = respond(memo, `${head}world`);
  assert.equal(memo.recalled, true, 'recalled, not parsed');
  assert.deepEqual(second.sink.heads[0]?.fields, fields);
  assert.equal(second.sink.body, 'world');
  assert.equal(second.sink.complete, true);
  assert.equal(second.parser.reusable, true);
  assert.notEqual(second.sink.heads[0]?.fields, memo.headFields, 'a copy');
});

test('a head that differs in one byte is parsed for itself: its own length frames the body', () => {
  const memo = newHeadMemo();
  respond(memo, `${head}hello`);
  const other = respond(memo, `${head.replace('Content-Length: 5', 'Content-Length: 6')}hello!`);
  assert.equal(memo.recalled, false);
  assert.equal(other.sink.body, 'hello!');
  assert.deepEqual(other.sink.heads[0]?.fields, fields.map((f) => (f === '5' ? '6' : f)));
  const closing = respond(memo, `${head.replace('keep-alive', 'close   ')}hello`);
  assert.equal(closing.parser.reusable, false);
});

test('the answer to a HEAD request shares the head of a GET: each is framed by its own request', () => {
  const memo = newHeadMemo();
  const get = respond(memo, `${head}hello`);
  assert.equal(get.sink.body, 'hello');
  const headOnly = respond(memo, head, { head: true });
  assert.equal(memo.recalled, true);
  assert.equal(headOnly.sink.complete, true, 'no body after a HEAD');
  assert.equal(headOnly.sink.body, '');
  const again = respond(memo, `${head}again`);
  assert.equal(again.sink.body, 'again');
});

test('a head cut across reads is parsed, and remembered only when it came whole', () => {
  const memo = newHeadMemo();
  for (const split of [1, 7, 40]) {
    const cut = respond(memo, `${head}hello`, { split });
    assert.deepEqual(cut.sink.heads[0]?.fields, fields);
    assert.equal(cut.sink.body, 'hello');
    assert.equal(memo.bytes, null, `split in ${split}-byte reads`);
  }
  // Cut at the end of a line: the second read starts a line of its own, but not the head.
  const cut = head.indexOf('Content-Type');
  const parser = new ResponseParser(16 * 1024, memo);
  const sink = new Sink();
  parser.start(sink, false, false);
  parser.execute(Buffer.from(head.slice(0, cut), 'latin1'), 0);
  parser.execute(Buffer.from(`${head.slice(cut)}hello`, 'latin1'), 0);
  assert.deepEqual(sink.heads[0]?.fields, fields);
  assert.equal(memo.bytes, null, 'cut at a line end');
  // So the rest of that head, alone, is still no response.
  assert.throws(() => respond(memo, `${head.slice(cut)}hello`), /status line/);
  respond(memo, `${head}hello`);
  assert.equal((memo.bytes as Buffer | null)?.toString('latin1'), head);
});

test('interim responses are never remembered; the final head after one is', () => {
  const memo = newHeadMemo();
  const { sink } = respond(memo, `HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n${head}hello`);
  assert.deepEqual(sink.heads.map((h) => h.status), [103, 200]);
  assert.equal(memo.bytes?.toString('latin1'), head);
  const next = respond(memo, `HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n${head}hello`);
  assert.deepEqual(next.sink.heads.map((h) => h.status), [103, 200]);
  assert.equal(memo.recalled, true);
});

test('a head never recalled gives way to a new one only every 16th head', () => {
  const memo = newHeadMemo();
  const facts = new ResponseParser(1024).head;
  const bytes = (i: number): Buffer => Buffer.from(`HTTP/1.1 200 OK\r\nX-Id: ${i}\r\n\r\n`, 'latin1');
  rememberHead(memo, bytes(0), 0, bytes(0).length, facts, ['x-id', '0']);
  for (let i = 1; i < 16; i++) {
    rememberHead(memo, bytes(i), 0, bytes(i).length, facts, ['x-id', String(i)]);
    assert.equal(memo.headFields[1], '0', `head ${i}`);
  }
  rememberHead(memo, bytes(16), 0, bytes(16).length, facts, ['x-id', '16']);
  assert.equal(memo.headFields[1], '16');
  // Once recalled, the next new head replaces it at once.
  assert.equal(recallHead(memo, bytes(16), 0, facts), bytes(16).length);
  rememberHead(memo, bytes(17), 0, bytes(17).length, facts, ['x-id', '17']);
  assert.equal(memo.headFields[1], '17');
  assert.equal(recallHead(memo, bytes(16), 0, facts), -1);
});
