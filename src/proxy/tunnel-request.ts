import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { httpErrorFor, type ErrorCode } from '../errors.js';

/**
 * Which requests become tunnels: an HTTP/1.1 GET whose Connection lists `upgrade` and whose
 * Upgrade lists `websocket` (RFC 6455 section 4.1; tokens compare case-insensitively, RFC 9110
 * section 7.8). Any other upgrade (h2c, a POST, HTTP/1.0, a GET that declares a body, whose
 * bytes would otherwise enter the tunnel) is answered as plain HTTP/1.1.
 */
export function isTunnelRequest(method: string | undefined, httpVersion: string, raw: readonly string[]): boolean {
  if (method !== 'GET' || httpVersion !== '1.1') return false;
  return listsToken(raw, 'connection', 'upgrade') && listsToken(raw, 'upgrade', 'websocket') && !declaresBody(raw);
}

function declaresBody(raw: readonly string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (name === 'transfer-encoding' || (name === 'content-length' && (raw[i + 1] as string).trim() !== '0')) return true;
  }
  return false;
}

/** Whether a field named `lowerName` lists `token` (a protocol's name before any `/version`). */
function listsToken(raw: readonly string[], lowerName: string, token: string): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length !== lowerName.length || name.toLowerCase() !== lowerName) continue;
    for (const part of (raw[i + 1] as string).split(',')) {
      const item = part.trim().toLowerCase();
      const slash = item.indexOf('/');
      if ((slash === -1 ? item : item.slice(0, slash)) === token) return true;
    }
  }
  return false;
}

const kUpgradeSeen = Symbol('switchyard.upgrade');

/**
 * The server's IncomingMessage class. Node 20 sends every upgrade request to the 'upgrade'
 * listener when there is one (there is no per-request filter before Node 24); reading
 * `upgrade` here says true only for tunnel requests, so any other upgrade takes the normal
 * request path, exactly as if no 'upgrade' listener existed.
 */
export function tunnelFilteringMessage(base: typeof IncomingMessage): typeof IncomingMessage {
  class TunnelFilteringMessage extends base {
    [kUpgradeSeen]?: boolean;

    // @ts-expect-error an accessor over the base class's data property, on purpose
    override get upgrade(): boolean {
      return this[kUpgradeSeen] === true && (this.method === 'CONNECT' || isTunnelRequest(this.method, this.httpVersion, this.rawHeaders));
    }

    // @ts-expect-error as above
    override set upgrade(value: boolean) {
      this[kUpgradeSeen] = value;
    }
  }
  return TunnelFilteringMessage;
}

/** Writes a one-line error answer on the raw client socket and closes it. */
export function answerRaw(socket: Duplex, code: ErrorCode): void {
  const { status, body } = httpErrorFor(code);
  const text = `${body}\n`;
  const head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: text/plain; charset=utf-8\r\nx-content-type-options: nosniff\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n`;
  if (socket.writable) socket.end(head + text);
  else socket.destroy();
}
