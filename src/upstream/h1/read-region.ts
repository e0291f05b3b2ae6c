/**
 * Where a plain-TCP backend socket reads: net.connect's `onread`, which hands each read to a
 * callback in a buffer the caller chose, instead of a fresh 64 KiB allocation pushed through the
 * socket's Readable (an ArrayBuffer, a Buffer, a 'data' event and a next-tick per read).
 *
 * - While a socket's reads are small (response heads, small bodies, idle keep-alive), it reads
 *   into the one region every such socket shares: an idle connection holds no read buffer of its
 *   own. Bytes there are lent for the length of the callback; whoever keeps them copies them.
 * - A read that fills its region (a large body streaming) moves the socket to regions of its own,
 *   a fresh one per read, whose bytes are handed on without a copy, as a Readable's would be. A
 *   read that leaves room, or that ends the response, moves it back to the shared region.
 *
 * Node calls `onread.buffer` once when it makes the socket's handle, then right after each
 * callback (lib/internal/stream_base_commons.js); a non-buffer return keeps the current region.
 */

import { kConnection, type TaggedSocket } from './connection-base.js';

/** The shared region's size: the most one read returns while a socket's reads are small. */
export const sharedRegionBytes = 64 * 1024;
/** A region of its own: larger than the shared one, so a large body takes fewer reads, and fewer writes to the client. */
export const ownRegionBytes = 256 * 1024;

const shared = Buffer.allocUnsafeSlow(sharedRegionBytes);

/** The region the last callback chose for its socket's next read; undefined: keep the current one. */
let chosen: Buffer | undefined;
/** A callback ran and chose: the next call is for its socket, not for a new handle. */
let decided = false;

/** onread.buffer. */
export function nextRegion(): Buffer | undefined {
  if (!decided) return shared;
  decided = false;
  const region = chosen;
  chosen = undefined;
  return region;
}

/** onread.callback: the read's bytes, lent when they are in the shared region (the next read of any socket overwrites them). */
export function onRegionRead(this: TaggedSocket, nread: number, region: Buffer): boolean {
  const conn = this[kConnection];
  // Only a socket that never reads into a region leaves with an upgrade (H1Pool.dispatch).
  if (conn === null) this.destroy();
  else conn.onRegionData(region.subarray(0, nread), region === shared);
  // Chosen last: when the callback throws, Node does not ask for the next region either. A full
  // region with the response still coming: the body streams. Otherwise (room left, or the
  // connection went back to its pool idle) the shared region.
  decided = true;
  if (nread === region.length && conn !== null && conn.handler !== null) chosen = Buffer.allocUnsafeSlow(ownRegionBytes);
  else if (region !== shared) chosen = shared;
  return true;
}
