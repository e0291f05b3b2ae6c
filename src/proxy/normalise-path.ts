/**
 * The one form of a request path that routing matches and backends receive (issue 9, section 3):
 * percent-encoded unreserved characters decoded and the hex digits of other escapes upper-cased
 * (RFC 3986 sections 2.3, 6.2.2.1, 6.2.2.2), `//` merged into `/` (as nginx's merge_slashes),
 * dot segments removed (section 5.2.4). The query is left as sent. A path that climbs above the
 * root, or has a malformed escape, has no normal form (null: the client gets 400).
 *
 * Ambiguous forms, which backends read differently: an encoded `/` (%2F) or `\` (%5C), a literal
 * `\`, and a segment that is `.` or `..` only once decoded (`%2e%2e`, `.%2E`). Rejected (null) by
 * default; kept as sent (hex upper-cased) when the listener keeps them, and then decodedTarget()
 * is how a backend that decodes them reads the result.
 */

/** How rewrite() treats ambiguous forms. */
const Mode = {
  /** They have no normal form. */
  Reject: 0,
  /** They stay as they are: not separators, not dot segments. */
  Keep: 1,
  /** They are read as a decoding backend reads them: separators and dot segments. */
  DecodeAll: 2,
} as const;
type Mode = (typeof Mode)[keyof typeof Mode];

const slash = 47;
const dot = 46;
const percent = 37;
const backslash = 92;
const question = 63;
const hexDigits = '0123456789ABCDEF';

/**
 * `target` (origin-form, starting with `/`) in normal form, or null when it climbs above the root,
 * has a malformed escape, or (unless `keepAmbiguous`) an ambiguous form. Returns `target` itself,
 * without allocating, when it is already normal (the common case).
 */
export function normaliseTarget(target: string, keepAmbiguous: boolean): string | null {
  return isPlain(target) ? target : rewrite(target, keepAmbiguous ? Mode.Keep : Mode.Reject);
}

/**
 * How a backend that decodes every escape and takes `\` for `/` reads a target normalised with
 * ambiguous forms kept; null when that reading climbs above the root. `target` itself when it has
 * nothing to decode.
 */
export function decodedTarget(target: string): string | null {
  return isPlain(target) ? target : rewrite(target, Mode.DecodeAll);
}

/** -1 past the end, so that the end of the target ends a segment. */
function codeAt(target: string, i: number): number {
  return i < target.length ? target.charCodeAt(i) : -1;
}

function endsSegment(code: number): boolean {
  return code === slash || code === question || code === -1;
}

/**
 * True when the path has nothing to rewrite: no `%`, no `\`, no `//`, no `.` or `..` segment.
 * A plain index loop: this runs for every request.
 */
function isPlain(target: string): boolean {
  const length = target.length;
  for (let i = 0; i < length; i++) {
    const code = target.charCodeAt(i);
    if (code === question) return true;
    if (code === percent || code === backslash) return false;
    if (code !== slash) continue;
    const next = codeAt(target, i + 1);
    if (next === slash) return false;
    if (next !== dot) continue;
    const after = codeAt(target, i + 2);
    if (endsSegment(after) || (after === dot && endsSegment(codeAt(target, i + 3)))) return false;
  }
  return true;
}

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  const lower = code | 0x20;
  return lower >= 97 && lower <= 102 ? lower - 87 : -1;
}

/** RFC 3986 section 2.3: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(code: number): boolean {
  const lower = code | 0x20;
  return (lower >= 97 && lower <= 122) || (code >= 48 && code <= 57) || code === 45 || code === dot || code === 95 || code === 126;
}

/** The slow path: segment by segment, for the few targets isPlain() sends here. */
function rewrite(target: string, mode: Mode): string | null {
  const queryStart = target.indexOf('?');
  const end = queryStart === -1 ? target.length : queryStart;
  const output: string[] = [];
  let segment = '';
  let segmentStart = 1;
  let encodedDot = false;
  // target[0] is `/`; position `end` closes the last segment.
  for (let i = 1; i <= end; i++) {
    const code = i < end ? target.charCodeAt(i) : slash;
    let separator = code === slash;
    if (code === percent) {
      const high = hexValue(codeAt(target, i + 1));
      const low = hexValue(codeAt(target, i + 2));
      if (high < 0 || low < 0 || i + 2 >= end) return null;
      const value = high * 16 + low;
      i += 2;
      if (value === slash || value === backslash) {
        if (mode === Mode.Reject) return null;
        if (mode === Mode.DecodeAll) separator = true;
        else segment += value === slash ? '%2F' : '%5C';
      } else if (isUnreserved(value)) {
        segment += String.fromCharCode(value);
        if (value === dot) encodedDot = true;
      } else {
        segment += `%${hexDigits[high]}${hexDigits[low]}`;
      }
    } else if (code === backslash) {
      if (mode === Mode.Reject) return null;
      if (mode === Mode.DecodeAll) separator = true;
      else segment += '\\';
    } else if (!separator) {
      segment += String.fromCharCode(code);
    }
    if (!separator) continue;

    const last = i === end;
    if (segment === '.' || segment === '..') {
      if (encodedDot && mode === Mode.Reject) return null;
      if (encodedDot && mode === Mode.Keep) {
        // Not a dot segment as sent: kept, with its hex upper-cased.
        output.push(target.slice(segmentStart, i).toUpperCase());
      } else if (segment === '..' && output.pop() === undefined) {
        return null; // above the root
      } else if (last) {
        output.push(''); // `/a/..` is `/`, `/a/.` is `/a/`: a directory
      }
    } else if (segment !== '' || last) {
      output.push(segment); // an empty segment only at the end: `/a/` keeps its slash
    }
    segment = '';
    segmentStart = i + 1;
    encodedDot = false;
  }
  const path = `/${output.join('/')}`;
  return queryStart === -1 ? path : path + target.slice(queryStart);
}
