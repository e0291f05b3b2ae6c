import type { HeadFacts } from './response-head.js';

/**
 * What the parsers of one backend's connections remember of its recent final heads. A backend
 * tends to send the same head over and over, but for its Date once a second.
 */
export interface HeadMemo {
  /** The fields of the last final head: a field line repeating one of them reuses its checked strings (parseFieldLine). */
  fields: readonly string[];
  /** A final head read whole from one buffer, status line to empty line; null: none yet. */
  bytes: Buffer | null;
  /** What those bytes parsed to: the facts and a copy of the fields, which no sink ever sees. */
  readonly facts: HeadFacts;
  headFields: readonly string[];
  /** The remembered head was recalled at least once / heads seen since it missed. */
  recalled: boolean;
  missed: number;
}

export function newHeadMemo(): HeadMemo {
  const facts: HeadFacts = { minor: 1, status: 0, reason: '', contentLength: -1, transferEncoding: '', close: false, keepAlive: false, keepAliveHint: '', previousFields: [] };
  return { fields: [], bytes: null, facts, headFields: [], recalled: false, missed: 0 };
}

/**
 * When `buf` at `off` repeats the remembered head byte for byte, which a parser accepted: its
 * length, with `head` set as that parse left it; else -1.
 */
export function recallHead(memo: HeadMemo, buf: Buffer, off: number, head: HeadFacts): number {
  const bytes = memo.bytes;
  if (bytes === null) return -1;
  const end = off + bytes.length;
  if (end > buf.length || buf.compare(bytes, 0, bytes.length, off, end) !== 0) return -1;
  copyFacts(memo.facts, head);
  memo.recalled = true;
  return bytes.length;
}

/**
 * Remembers the final head at [from, to) of `buf`, just parsed to `head` and `fields`. A head
 * that was never recalled is replaced by only one head in 16: a backend whose heads all differ
 * (a request id in each) costs a copy per 16 responses, not one per response.
 */
export function rememberHead(memo: HeadMemo, buf: Buffer, from: number, to: number, head: HeadFacts, fields: readonly string[]): void {
  if (memo.bytes !== null && !memo.recalled && (++memo.missed & 15) !== 0) return;
  memo.bytes = Buffer.from(buf.subarray(from, to));
  copyFacts(head, memo.facts);
  memo.headFields = fields.slice();
  memo.recalled = false;
  memo.missed = 0;
}

function copyFacts(from: HeadFacts, to: HeadFacts): void {
  to.minor = from.minor;
  to.status = from.status;
  to.reason = from.reason;
  to.contentLength = from.contentLength;
  to.transferEncoding = from.transferEncoding;
  to.close = from.close;
  to.keepAlive = from.keepAlive;
  to.keepAliveHint = from.keepAliveHint;
}
