import { BadResponseError } from '../client-errors.js';
import { equalsLower, fieldName, tokenChar, valueChar } from './field-names.js';
import { parseHead, type HeadFacts, type StatusLine } from './response-head.js';

/** `HTTP/1.1 200 OK` (RFC 9112 §4) at [s, e) of `buf`: HTTP/1.0 or 1.1, three digits, an optional reason. */
export function parseStatusLine(out: StatusLine, buf: Buffer, s: number, e: number): void {
  if (e - s < 12 || !equalsLower(buf, s, s + 7, 'http/1.') || buf[s] !== 0x48 || buf[s + 1] !== 0x54 || buf[s + 2] !== 0x54 || buf[s + 3] !== 0x50) {
    throw new BadResponseError('the status line is not HTTP/1.x (RFC 9112 §4)');
  }
  const minor = (buf[s + 7] as number) - 0x30;
  if ((minor !== 0 && minor !== 1) || buf[s + 8] !== 0x20) throw new BadResponseError('the status line is not HTTP/1.0 or HTTP/1.1');
  let status = 0;
  for (let i = s + 9; i < s + 12; i++) {
    const d = (buf[i] as number) - 0x30;
    if (d < 0 || d > 9) throw new BadResponseError('the status code is not three digits');
    status = status * 10 + d;
  }
  if (status < 100) throw new BadResponseError(`status code ${status} is below 100`);
  let reason = '';
  if (e > s + 12) {
    if (buf[s + 12] !== 0x20) throw new BadResponseError('the status code is not three digits');
    for (let i = s + 13; i < e; i++) if (valueChar[buf[i] as number] === 0) throw new BadResponseError('a control character in the reason phrase');
    reason = e - s === 15 && buf[s + 13] === 0x4f && buf[s + 14] === 0x4b ? 'OK' : buf.toString('latin1', s + 13, e);
  }
  out.minor = minor;
  out.status = status;
  out.reason = reason;
}

/**
 * `name: value` at [s, e) (RFC 9112 §5): a token, no space before the colon, no obs-fold, no CTL
 * in the value; pushed onto `fields` (name lower-cased, value trimmed). With `head`, a field of
 * the head: framing fields are noted there.
 */
export function parseFieldLine(buf: Buffer, s: number, e: number, fields: string[], head: HeadFacts | null): void {
  if (head !== null) {
    // A backend tends to send the same fields in the same order: a repeated line costs no new strings.
    const previous = head.previousFields;
    const at = fields.length;
    if (at + 1 < previous.length) {
      const name = previous[at] as string;
      const value = previous[at + 1] as string;
      const vs = repeatedValueStart(buf, s, e, name, value);
      if (vs !== -1) {
        fields.push(name, value);
        parseHead(head, name, value, buf, vs, vs + value.length);
        return;
      }
    }
  }
  const first = buf[s] as number;
  if (first === 0x20 || first === 0x09) throw new BadResponseError('obsolete line folding (RFC 9112 §5.2)');
  let i = s;
  let upper = false;
  for (; i < e; i++) {
    const c = buf[i] as number;
    if (c === 0x3a) break;
    if (tokenChar[c] === 0) throw new BadResponseError('a field name that is not a token (RFC 9110 §5.1)');
    if (c <= 0x5a && c >= 0x41) upper = true;
  }
  if (i === e || i === s) throw new BadResponseError('a field line without a name and a colon');
  let vs = i + 1;
  while (vs < e && (buf[vs] === 0x20 || buf[vs] === 0x09)) vs++;
  let ve = e;
  while (ve > vs && (buf[ve - 1] === 0x20 || buf[ve - 1] === 0x09)) ve--;
  for (let j = vs; j < ve; j++) if (valueChar[buf[j] as number] === 0) throw new BadResponseError('a control character in a field value (RFC 9110 §5.5)');
  const name = fieldName(buf, s, i, upper);
  const value = buf.toString('latin1', vs, ve);
  fields.push(name, value);
  if (head !== null) parseHead(head, name, value, buf, vs, ve);
}

/**
 * Where the value starts when the line at [s, e) is `name` (a lower-cased token, in any ASCII
 * case), a colon and `value` (already checked and trimmed) with optional whitespace around it,
 * which parses to exactly that name and value; else -1.
 */
function repeatedValueStart(buf: Buffer, s: number, e: number, name: string, value: string): number {
  const colon = s + name.length;
  if (colon >= e || buf[colon] !== 0x3a) return -1;
  for (let i = 0; i < name.length; i++) {
    const c = buf[s + i] as number;
    const l = name.charCodeAt(i);
    if (c !== l && (l < 0x61 || l > 0x7a || c !== l - 0x20)) return -1;
  }
  let vs = colon + 1;
  while (vs < e && (buf[vs] === 0x20 || buf[vs] === 0x09)) vs++;
  const ve = vs + value.length;
  if (ve > e) return -1;
  for (let j = 0; j < value.length; j++) if (buf[vs + j] !== value.charCodeAt(j)) return -1;
  for (let j = ve; j < e; j++) if (buf[j] !== 0x20 && buf[j] !== 0x09) return -1;
  return vs;
}

/** The size of a chunk-size line at [s, e) (RFC 9112 §7.1): hex digits, extensions skipped. */
export function parseChunkSize(buf: Buffer, s: number, e: number): number {
  let i = s;
  let size = 0;
  for (; i < e; i++) {
    const byte = buf[i] as number;
    const c = byte | 0x20;
    const digit = byte < 0x30 ? -1 : c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (digit < 0) break;
    if (size >= 2 ** 48) throw new BadResponseError('a chunk size that does not fit');
    size = size * 16 + digit;
  }
  if (i === s) throw new BadResponseError('a chunk without a hexadecimal size (RFC 9112 §7.1)');
  while (i < e && (buf[i] === 0x20 || buf[i] === 0x09)) i++;
  if (i < e) {
    if (buf[i] !== 0x3b) throw new BadResponseError('an invalid chunk-size line (RFC 9112 §7.1)');
    for (let j = i + 1; j < e; j++) if (valueChar[buf[j] as number] === 0) throw new BadResponseError('a control character in a chunk extension');
  }
  return size;
}
