/**
 * Finds where JSON text stops being JSON (RFC 8259), for a FILE:LINE:COL line: V8's messages
 * carry no position for some mistakes, and a trailing comma deserves to be named. Only called
 * after JSON.parse has refused the text.
 */
export interface JsonSyntaxProblem {
  readonly offset: number;
  readonly message: string;
}

class Stop {
  readonly offset: number;
  readonly message: string;
  constructor(offset: number, message: string) {
    this.offset = offset;
    this.message = message;
  }
}

const numberPattern = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

export function jsonSyntaxProblem(text: string): JsonSyntaxProblem | null {
  let pos = 0;
  const shown = (): string => (pos >= text.length ? 'end of file' : JSON.stringify(text[pos]));
  const ws = (): void => {
    while (pos < text.length && ' \t\n\r'.includes(text[pos] as string)) pos++;
  };
  const string = (): void => {
    const start = pos++;
    for (;;) {
      if (pos >= text.length) throw new Stop(start, 'unterminated string');
      const c = text.charCodeAt(pos);
      if (c === 34 /* " */) break;
      if (c < 0x20) throw new Stop(pos, 'control character inside a string');
      if (c === 92 /* \ */) {
        if (/^(?:["\\/bfnrt]|u[0-9a-fA-F]{4})/.test(text.slice(pos + 1, pos + 6))) pos += text[pos + 1] === 'u' ? 6 : 2;
        else throw new Stop(pos, 'invalid escape in a string');
      } else pos++;
    }
    pos++;
  };
  const collection = (close: '}' | ']'): void => {
    pos++;
    ws();
    if (text[pos] === close) {
      pos++;
      return;
    }
    for (;;) {
      ws();
      if (close === '}') {
        if (text[pos] !== '"') throw new Stop(pos, `expected a "quoted" key, found ${shown()}`);
        string();
        ws();
        if (text[pos] !== ':') throw new Stop(pos, `expected ":" after the key, found ${shown()}`);
        pos++;
      }
      value();
      ws();
      if (text[pos] === close) {
        pos++;
        return;
      }
      if (text[pos] !== ',') throw new Stop(pos, `expected "," or "${close}", found ${shown()}`);
      const comma = pos++;
      ws();
      if (text[pos] === close) throw new Stop(comma, `trailing comma before "${close}" (JSON allows none)`);
    }
  };
  const value = (): void => {
    ws();
    const c = text[pos];
    if (c === '{') return collection('}');
    if (c === '[') return collection(']');
    if (c === '"') return string();
    numberPattern.lastIndex = pos;
    if (numberPattern.test(text)) {
      pos = numberPattern.lastIndex;
      return;
    }
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return;
      }
    }
    throw new Stop(pos, pos >= text.length ? 'unexpected end of file' : `unexpected ${shown()}`);
  };
  try {
    value();
    ws();
    if (pos < text.length) throw new Stop(pos, `unexpected ${shown()} after the end of the JSON value`);
  } catch (err) {
    if (err instanceof Stop) return { offset: err.offset, message: err.message };
    throw err;
  }
  return null;
}
