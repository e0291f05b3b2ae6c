import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spellsLower } from '../../src/upstream/h1/field-names.js';

test('spellsLower answers as toLowerCase() === lower does, without the copy', () => {
  const lowers = ['keep-alive', 'close', 'host', 'content-length', 'te', 'x-forwarded-for', 'http2-settings'];
  const texts = [
    'keep-alive', 'Keep-Alive', 'KEEP-ALIVE', 'keep_alive', 'keep\ralive', 'keep-aliv', 'keep-alivee', 'kEEP-aLIVE',
    'close', 'Close', 'CLOSE', 'clos', 'c1ose', 'host', 'HoSt', 'h0st', 'Host ', 'TE', 'tE', 'Te', 'te',
    'Content-Length', 'content\rlength', 'CONTENT-LENGTH', 'HTTP2-Settings', 'http2-settingS', 'http\x12-settings',
    // Non-ASCII: the Kelvin sign lower-cases to `k`, a dotted capital I to two characters.
    '\u212Aeep-alive', 'keep-al\u0130ve', '\u0130', 'hos\u00f4', 'X-Forwarded-For', 'x-forwarded-fo\u0280', '',
  ];
  for (const lower of lowers) {
    for (const text of texts) assert.equal(spellsLower(text, lower), text.toLowerCase() === lower, `${JSON.stringify(text)} vs ${lower}`);
  }
});
