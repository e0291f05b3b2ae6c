import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exchange, startPair, type Pair } from './h1-support.js';

/**
 * Hostile and borderline HTTP/1.1 requests sent byte for byte to two listeners of one
 * Switchyard in front of one backend: the listener's own HTTP/1.1 path, and a listener that
 * node:http reads throughout (h2c on). Every vector must get the same answers (status, body,
 * whether the connection closed) and reach the backend the same way (method, target, body):
 * the own path may serve a request or hand it to node:http, never decide differently.
 */

const C = 'Host: a\r\nConnection: close\r\n';
const K = 'Host: a\r\n';
/** A request hidden where a body should be: if the backend ever sees /smuggled, framing broke. */
const SM = 'GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n';
const GETC = `GET /after HTTP/1.1\r\n${C}\r\n`;

interface Vector {
  readonly name: string;
  readonly parts: readonly string[];
  /** Positions of HEAD requests among the responses. */
  readonly heads?: readonly boolean[];
}

const v = (name: string, ...parts: string[]): Vector => ({ name, parts });

const vectors: readonly Vector[] = [
  // Smuggling: framing fields (RFC 9112 sections 6.1-6.3, 11.2).
  v('CL and TE', `POST / HTTP/1.1\r\n${K}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SM}`),
  v('TE and CL', `POST / HTTP/1.1\r\n${K}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n${SM}`),
  v('CL 1, 1', `POST / HTTP/1.1\r\n${C}Content-Length: 1, 1\r\n\r\na`),
  v('CL twice, equal', `POST / HTTP/1.1\r\n${C}Content-Length: 1\r\nContent-Length: 1\r\n\r\na`),
  v('CL twice, different', `POST / HTTP/1.1\r\n${K}Content-Length: 0\r\nContent-Length: ${SM.length}\r\n\r\n${SM}`),
  v('CL with leading zeros', `POST / HTTP/1.1\r\n${C}Content-Length: 003\r\n\r\nabc`),
  v('CL all zeros', `POST / HTTP/1.1\r\n${C}Content-Length: 000\r\n\r\n`),
  v('CL with + sign', `POST / HTTP/1.1\r\n${C}Content-Length: +3\r\n\r\nabc`),
  v('CL negative', `POST / HTTP/1.1\r\n${C}Content-Length: -3\r\n\r\nabc`),
  v('CL with OWS before and space after', `POST / HTTP/1.1\r\n${C}Content-Length: \t3 \r\n\r\nabc`),
  v('CL huge', `POST / HTTP/1.1\r\n${C}Content-Length: 99999999999999999999\r\n\r\nabc`),
  v('CL 2^53', `POST / HTTP/1.1\r\n${C}Content-Length: 9007199254740993\r\n\r\nabc`),
  v('CL on a GET', `GET / HTTP/1.1\r\n${C}Content-Length: 3\r\n\r\nabc`),
  v('CL name in odd case', `POST / HTTP/1.1\r\n${C}cOnTeNt-LeNgTh: 3\r\n\r\nabc`),
  v('body longer than CL, then a request', `POST /a HTTP/1.1\r\n${K}Content-Length: 3\r\n\r\nabc${GETC}`),
  v('CL 0 then a request', `POST /a HTTP/1.1\r\n${K}Content-Length: 0\r\n\r\n${GETC}`),
  v('body across the second request head, then a valid one', `POST /a HTTP/1.1\r\n${K}Content-Length: 3\r\n\r\nabcGE`, `T /after HTTP/1.1\r\n${C}\r\n`),
  v('body across the second request head', `POST /a HTTP/1.1\r\n${K}Content-Length: 5\r\n\r\nabcGE`, `T /after HTTP/1.1\r\n${C}\r\n`),
  v('TE chunked on HTTP/1.0', `POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`),
  v('TE: trailers on HTTP/1.0', `GET / HTTP/1.0\r\nTE: trailers\r\n\r\n`),
  v('Expect: 100-continue', `POST / HTTP/1.1\r\n${C}Expect: 100-continue\r\nContent-Length: 3\r\n\r\n`, 'abc'),
  v('Expect: something else', `POST / HTTP/1.1\r\n${C}Expect: 200-ok\r\nContent-Length: 3\r\n\r\nabc`),
  v('Upgrade to an HTTP backend', `GET / HTTP/1.1\r\n${C}Upgrade: websocket\r\n\r\n`),
  v('Connection: upgrade without Upgrade', `GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade, close\r\n\r\n`),
  // Field lines (RFC 9112 section 5, RFC 9110 section 5.5).
  v('obs-fold', `GET / HTTP/1.1\r\n${C}X-A: b\r\n c\r\n\r\n`),
  v('obs-fold with a tab', `GET / HTTP/1.1\r\n${C}X-A: b\r\n\tc\r\n\r\n`),
  v('obs-fold as first field line', `GET / HTTP/1.1\r\n X: y\r\n${C}\r\n`),
  v('bare LF ending the request line', `GET / HTTP/1.1\n${C}\r\n`),
  v('bare LF ending a field line', `GET / HTTP/1.1\r\nHost: a\nConnection: close\r\n\r\n`),
  v('bare LF ending the head', `GET / HTTP/1.1\r\n${C}\n`),
  v('all bare LF', `GET / HTTP/1.1\nHost: a\nConnection: close\n\n`),
  v('bare CR in the request line', `GET /\r HTTP/1.1\r\n${C}\r\n`),
  v('bare CR in a value', `GET / HTTP/1.1\r\n${C}X: a\rb\r\n\r\n`),
  v('CR CR LF', `GET / HTTP/1.1\r\n${C}X: a\r\r\n\r\n`),
  v('bare CR ending the head', `GET / HTTP/1.1\r\n${C}\r\r\n`),
  v('NUL in the target', `GET /a\0b HTTP/1.1\r\n${C}\r\n`),
  v('NUL in a name', `GET / HTTP/1.1\r\n${C}X\0: b\r\n\r\n`),
  v('NUL in a value', `GET / HTTP/1.1\r\n${C}X: a\0b\r\n\r\n`),
  v('NUL before the method', `\0GET / HTTP/1.1\r\n${C}\r\n`),
  v('VT in a value', `GET / HTTP/1.1\r\n${C}X: a\x0bb\r\n\r\n`),
  v('8-bit value', `GET / HTTP/1.1\r\n${C}X: caf\xe9\r\n\r\n`),
  v('8-bit name', `GET / HTTP/1.1\r\n${C}X\xe9: b\r\n\r\n`),
  v('name with @', `GET / HTTP/1.1\r\n${C}X@Y: b\r\n\r\n`),
  v('name with a quote', `GET / HTTP/1.1\r\n${C}X"Y: b\r\n\r\n`),
  v('name with a slash', `GET / HTTP/1.1\r\n${C}X/Y: b\r\n\r\n`),
  v('name with every tchar', `GET / HTTP/1.1\r\n${C}!#$%&'*+-.^_\`|~09azAZ: b\r\n\r\n`),
  v('names of Object.prototype', `GET / HTTP/1.1\r\n${C}__proto__: x\r\nconstructor: y\r\ntoString: z\r\nhasOwnProperty: w\r\n\r\n`),
  v('__proto__ twice', `GET / HTTP/1.1\r\n${C}__proto__: {"a":1}\r\n__proto__: x\r\n\r\n`),
  v('space before the colon', `GET / HTTP/1.1\r\n${C}X-A : b\r\n\r\n`),
  v('tab before the colon', `GET / HTTP/1.1\r\n${C}X-A\t: b\r\n\r\n`),
  v('space inside a name', `GET / HTTP/1.1\r\n${C}X A: b\r\n\r\n`),
  v('empty name', `GET / HTTP/1.1\r\n${C}: b\r\n\r\n`),
  v('no colon', `GET / HTTP/1.1\r\n${C}NoColon\r\n\r\n`),
  v('value with only whitespace', `GET / HTTP/1.1\r\n${C}X:  \t \r\n\r\n`),
  v('Host with only whitespace', `GET / HTTP/1.1\r\nHost: \t\r\nConnection: close\r\n\r\n`),
  v('Host empty', `GET / HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n`),
  v('Host missing', `GET / HTTP/1.1\r\nConnection: close\r\n\r\n`),
  v('Host twice', `GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n`),
  v('Host with a space inside', `GET / HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n`),
  v('Host with userinfo', `GET / HTTP/1.1\r\nHost: u@a\r\nConnection: close\r\n\r\n`),
  // Request line (RFC 9112 section 3).
  v('two spaces after the method', `GET  / HTTP/1.1\r\n${C}\r\n`),
  v('two spaces before the version', `GET /  HTTP/1.1\r\n${C}\r\n`),
  v('tab after the method', `GET\t/ HTTP/1.1\r\n${C}\r\n`),
  v('tab before the version', `GET /\tHTTP/1.1\r\n${C}\r\n`),
  v('space after the version', `GET / HTTP/1.1 \r\n${C}\r\n`),
  v('leading empty line', `\r\nGET / HTTP/1.1\r\n${C}\r\n`),
  v('leading space', ` GET / HTTP/1.1\r\n${C}\r\n`),
  v('absolute-form', `GET http://a/x?y HTTP/1.1\r\n${C}\r\n`),
  v('absolute-form https with port', `GET https://a:8443/x HTTP/1.1\r\n${C}\r\n`),
  v('absolute-form with userinfo', `GET http://u:p@a/x HTTP/1.1\r\n${C}\r\n`),
  v('OPTIONS *', `OPTIONS * HTTP/1.1\r\n${C}\r\n`),
  v('GET *', `GET * HTTP/1.1\r\n${C}\r\n`),
  v('target without a slash', `GET x HTTP/1.1\r\n${C}\r\n`),
  v('long target', `GET /${'a'.repeat(8000)} HTTP/1.1\r\n${C}\r\n`),
  v('target over the header limit', `GET /${'a'.repeat(20_000)} HTTP/1.1\r\n${C}\r\n`),
  v('8-bit target', `GET /caf\xe9 HTTP/1.1\r\n${C}\r\n`),
  v('DEL in the target', `GET /a\x7f HTTP/1.1\r\n${C}\r\n`),
  v('# in the target', `GET /a#frag HTTP/1.1\r\n${C}\r\n`),
  v('dot segments', `GET /a/../../etc/passwd HTTP/1.1\r\n${C}\r\n`),
  v('lower-case version', `GET / http/1.1\r\n${C}\r\n`),
  v('HTTP/1.10', `GET / HTTP/1.10\r\n${C}\r\n`),
  v('HTTP/01.1', `GET / HTTP/01.1\r\n${C}\r\n`),
  v('HTTP/2.0', `GET / HTTP/2.0\r\n${C}\r\n`),
  v('HTTP/1.1 with no version', `GET /\r\n${C}\r\n`),
  v('HTTP/0.9', 'GET /\r\n'),
  v('HTTP/0.9 with an empty line', 'GET /\r\n\r\n'),
  v('lower-case method', `get / HTTP/1.1\r\n${C}\r\n`),
  v('unknown method', `BREW / HTTP/1.1\r\n${C}\r\n`),
  v('method with a token char', `GE-T / HTTP/1.1\r\n${C}\r\n`),
  v('CONNECT', 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n'),
  v('TRACE', `TRACE / HTTP/1.1\r\n${C}\r\n`),
  v('PRI over HTTP/1.1', `PRI * HTTP/1.1\r\n${C}\r\n`),
  v('HTTP/1.0 without Host', 'GET /x HTTP/1.0\r\n\r\n'),
  v('HTTP/1.0 keep-alive then a request', 'GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', 'GET /y HTTP/1.0\r\n\r\n'),
  v('many fields', `GET / HTTP/1.1\r\n${C}${Array.from({ length: 1500 }, (_, i) => `x${i}: v\r\n`).join('')}\r\n`),
  v('many small fields past the header limit', `GET / HTTP/1.1\r\n${C}${Array.from({ length: 3000 }, (_, i) => `x${i}: v\r\n`).join('')}\r\n`),
  // Pipelining and methods.
  { name: 'HEAD', parts: [`HEAD / HTTP/1.1\r\n${C}\r\n`], heads: [true] },
  { name: 'HEAD, then GET', parts: [`HEAD /a HTTP/1.1\r\n${K}\r\nGET /b HTTP/1.1\r\n${C}\r\n`], heads: [true, false] },
  v('three pipelined', `GET /1 HTTP/1.1\r\n${K}\r\nPOST /2 HTTP/1.1\r\n${K}Content-Length: 2\r\n\r\nhiGET /3 HTTP/1.1\r\n${C}\r\n`),
  v('pipelined then chunked', `GET /1 HTTP/1.1\r\n${K}\r\nPOST /2 HTTP/1.1\r\n${C}Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n`),
  v('DELETE with a body', `DELETE / HTTP/1.1\r\n${C}Content-Length: 2\r\n\r\nhi`),
  // Response side.
  v('no length, HTTP/1.1', `GET /nolength HTTP/1.1\r\n${C}\r\n`),
  v('no length, HTTP/1.1 keep-alive', `GET /nolength HTTP/1.1\r\n${K}\r\n${GETC}`),
  v('no length, HTTP/1.0', 'GET /nolength HTTP/1.0\r\n\r\n'),
  v('no length, HTTP/1.0 keep-alive', 'GET /nolength HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'),
  v('103, HTTP/1.1', `GET /hints HTTP/1.1\r\n${C}\r\n`),
  v('103, HTTP/1.0', 'GET /hints HTTP/1.0\r\n\r\n'),
  v('trailers, HTTP/1.1', `GET /trailers HTTP/1.1\r\n${C}\r\n`),
  v('trailers, HTTP/1.1 with TE: trailers', `GET /trailers HTTP/1.1\r\n${C}TE: trailers\r\n\r\n`),
  v('trailers, HTTP/1.0', 'GET /trailers HTTP/1.0\r\n\r\n'),
  v('204 with a body', `GET /raw/204-with-body HTTP/1.1\r\n${K}\r\n${GETC}`),
  v('204 chunked', `GET /raw/204-chunked HTTP/1.1\r\n${K}\r\n${GETC}`),
  v('304 with a Content-Length', `GET /raw/304-with-length HTTP/1.1\r\n${K}\r\n${GETC}`),
  v('close-delimited answer, HTTP/1.1', `GET /raw/200-close-delimited HTTP/1.1\r\n${K}\r\n${GETC}`),
  v('close-delimited answer, HTTP/1.0', 'GET /raw/200-close-delimited HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'),
  v('103 from the backend, HTTP/1.1', `GET /raw/103-then-200 HTTP/1.1\r\n${K}\r\n${GETC}`),
  v('103 from the backend, HTTP/1.0', 'GET /raw/103-then-200 HTTP/1.0\r\n\r\n'),
  v('unasked 100 from the backend', `GET /raw/100-then-200 HTTP/1.1\r\n${C}\r\n`),
  { name: 'HEAD answered with a Content-Length', parts: [`HEAD /raw/head-length HTTP/1.1\r\n${K}\r\n${GETC}`], heads: [true, false] },
  { name: 'HEAD of no length', parts: [`HEAD /nolength HTTP/1.1\r\n${C}\r\n`], heads: [true] },
];

/**
 * Where the own path departs from node:http on purpose, each with the own path's outcome:
 * RFC 9110 and 9112 say otherwise than llhttp, or node:http drops an answer it owed.
 */
const departures: readonly (Vector & { readonly why: string; readonly expect: Outcome })[] = [
  {
    // RFC 9110 section 5.5: whitespace around a field value is not part of it; llhttp refuses a trailing HTAB after the digits.
    name: 'CL with a trailing tab',
    parts: [`POST / HTTP/1.1\r\n${C}Content-Length: 3\t\r\n\r\nabc`],
    why: 'RFC 9110 section 5.5 (node:http: 400)',
    expect: { answers: ['200 [content-length] "POST / 3:abc"'], closed: true, seen: ['POST / "abc"'] },
  },
  {
    // RFC 9112 section 9.3: "close" ends the connection whatever else is said; llhttp keeps an HTTP/1.0 one open.
    name: 'HTTP/1.0 with both close and keep-alive',
    parts: ['GET /x HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n'],
    why: 'RFC 9112 section 9.3 (node:http keeps it open)',
    expect: { answers: ['200 [content-length] "GET /x 0:"'], closed: true, seen: ['GET /x ""'] },
  },
  {
    // The first request is answered before the 400 for what follows; node:http writes its 400 over the pending answer.
    name: 'body shorter than CL, then a request',
    parts: [`POST /a HTTP/1.1\r\n${K}Content-Length: 10\r\n\r\nabc${SM}`],
    why: 'node:http drops the first answer',
    expect: { answers: ['200 [content-length] "POST /a 10:abcGET /sm"', '400 [content-length]'], closed: true, seen: ['POST /a "abcGET /sm"'] },
  },
  {
    name: 'pipelined then garbage',
    parts: [`GET /1 HTTP/1.1\r\n${K}\r\nGARBAGE\r\n\r\n`],
    why: 'node:http drops the first answer',
    expect: { answers: ['200 [content-length] "GET /1 0:"', '400 [content-length]'], closed: true, seen: ['GET /1 ""'] },
  },
];

interface Outcome {
  readonly answers: string[];
  readonly closed: boolean;
  readonly seen: string[];
}

/** What one listener did with a vector. */
async function outcome(pair: Pair, port: number, vector: Vector, timeoutMs = 3000): Promise<Outcome> {
  pair.seen.length = 0;
  const { responses, closed } = await exchange(port, vector.parts, vector.heads ?? [], timeoutMs);
  const answers = responses.map((r) => {
    const framing = ['content-length', 'transfer-encoding'].filter((name) => r.headers.has(name)).join('+');
    // Refusals are compared by status: node:http's have no body, the proxy's say why.
    const body = r.status >= 400 ? '' : ` ${JSON.stringify(r.body.slice(0, 80))}`;
    return `${r.interim.map((s) => `${s} `).join('')}${r.status} [${framing || 'close'}]${body}${r.trailers === '' ? '' : ` trailers ${JSON.stringify(r.trailers)}`}`;
  });
  // node:http dispatches pipelined requests at once, the own path one after the other: order aside.
  const seen = pair.seen.map((s) => `${s.method} ${s.url.slice(0, 40)} ${JSON.stringify(s.body)}`).sort();
  return { answers, closed, seen };
}

test('the own path answers every vector as node:http does and forwards the same requests', async (t) => {
  const pair = await startPair(t);
  const differ: string[] = [];
  for (const vector of vectors) {
    const fast = JSON.stringify(await outcome(pair, pair.fast, vector));
    const node = JSON.stringify(await outcome(pair, pair.node, vector));
    if (fast !== node) differ.push(`${vector.name}\n  own path: ${fast}\n  node:http: ${node}`);
    else t.diagnostic(`${vector.name}: ${fast.replace(/\s+/g, ' ')}`);
    assert.ok(!pair.seen.some((s) => s.url === '/smuggled'), `${vector.name}: smuggled`);
  }
  assert.deepEqual(differ, []);
});

test('where node:http departs from RFC 9110/9112 or drops an answer, the own path follows the RFC', async (t) => {
  const pair = await startPair(t);
  for (const vector of departures) {
    // Only the own path is held to the RFC here: node:http's answer depends on its llhttp version
    // (Node 24's accepts a tab after Content-Length, Node 20's answers 400).
    assert.deepEqual(await outcome(pair, pair.fast, vector), vector.expect, `${vector.name}: ${vector.why}`);
  }
});

test('a bare CR, LF, NUL, tab, space, DEL or 8-bit byte inserted anywhere in a head, or any byte of it removed: both paths agree', async (t) => {
  // Short timeouts: a head the mutation leaves unfinished ends in a 408, a connection it keeps open soon closes.
  // Two Switchyards, so that both paths take each mutant at once (each backend records its own).
  const pair = await startPair(t, { clientHeadersTimeout: 300, clientKeepAlive: 300 });
  const other = await startPair(t, { clientHeadersTimeout: 300, clientKeepAlive: 300 });
  const head = `POST /p?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\n`;
  const mutants: Vector[] = [];
  for (let at = 0; at < head.length; at++) {
    for (const byte of ['\r', '\n', '\0', '\t', ' ', '\x7f', '\xff']) mutants.push(v(`${JSON.stringify(byte)} at ${at}`, `${head.slice(0, at)}${byte}${head.slice(at)}abc`));
    mutants.push(v(`byte ${at} removed`, `${head.slice(0, at)}${head.slice(at + 1)}abc`));
  }
  const differ: string[] = [];
  for (const mutant of mutants) {
    // node:http on Node 20.20 closes an idle keep-alive connection about 1 s after its keep-alive
    // timeout (1.3 s here): the window leaves room for that on a busy machine.
    const [fast, node] = await Promise.all([outcome(pair, pair.fast, mutant, 2500), outcome(other, other.node, mutant, 2500)]);
    if (JSON.stringify(fast) !== JSON.stringify(node) && departure(mutant.parts[0] as string, fast, node) === null) differ.push(`${mutant.name}: own path ${JSON.stringify(fast)}, node:http ${JSON.stringify(node)}`);
  }
  assert.deepEqual(differ, []);
});

/** Why the own path may answer a mutant otherwise than node:http, or null: one of the departures above. */
function departure(bytes: string, fast: Outcome, node: Outcome): string | null {
  // Trailing whitespace is not part of a field value (RFC 9110 section 5.5): "3\t" is 3, "close\t" is close.
  if (/\t\r\n/.test(bytes.slice(0, bytes.indexOf('\r\n\r\n') + 2))) return 'RFC 9110 section 5.5';
  // The mutant dropped the framing field: "abc" follows a request that asked to close. The own
  // path answers and reads no more (RFC 9112 section 9.6); node:http writes a 400 for "abc" instead.
  const same = JSON.stringify(fast.seen) === JSON.stringify(node.seen);
  if (same && fast.answers.length === 1 && fast.answers[0]?.startsWith('200 ') && JSON.stringify(node.answers) === '["400 [content-length]"]') return 'RFC 9112 section 9.6';
  return null;
}
