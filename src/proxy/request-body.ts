import type { IncomingMessage } from 'node:http';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import { noteBodyBytes } from '../body-streams.js';

/** The client's body grew past the listener's maxBodySize (a chunked body: no length up front). */
export class BodyTooLargeError extends SwitchyardError {
  constructor(maxBytes: number) {
    super(ErrorCodes.bodyTooLarge, `request body is larger than ${maxBytes} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/**
 * The client's request body as seen by upstream attempts. Each attempt iterates it afresh:
 * first the chunks already kept in the replay buffer, then whatever is still to come from the
 * client, pulled one chunk at a time so backpressure reaches the client's socket.
 *
 * Chunks are kept until they exceed `capBytes`; from then on the body is no longer replayable.
 * Abandoning an attempt never destroys the client's stream, so a later attempt or an error
 * response can still use the connection.
 *
 * Bytes read from the client are counted; past `maxBytes` (0: no limit) the body fails with
 * BodyTooLargeError, which aborts the attempt reading it.
 */
export class RequestBody implements AsyncIterable<Buffer> {
  /** Some body bytes were handed to an attempt. */
  bodyLeft = false;
  /** The client's stream failed (usually: the client went away mid-upload). */
  clientError: Error | null = null;

  private readonly req: IncomingMessage;
  private readonly capBytes: number;
  private readonly maxBytes: number;
  private receivedBytes = 0;
  private kept: Buffer[] | null = [];
  private keptBytes = 0;
  private handedOut = 0;
  private current: Attempt | null = null;
  private ended = false;
  private wake: (() => void) | null = null;

  constructor(req: IncomingMessage, capBytes: number, maxBytes = 0) {
    this.req = req;
    this.capBytes = capBytes;
    this.maxBytes = maxBytes;
    req.on('readable', this.onSignal);
    req.on('end', this.onEnd);
    req.on('error', this.onError);
  }

  /** Everything handed to attempts so far is still kept, so the body can be sent again. */
  get replayable(): boolean {
    return this.kept !== null;
  }

  /** Drops the replay buffer; the body streams on but can no longer be replayed. */
  release(): void {
    this.kept = null;
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    this.abandonAttempt();
    const attempt = new Attempt(this);
    this.current = attempt;
    return attempt;
  }

  /**
   * The attempt reading the body failed: its iterator stops, even while it waits for the
   * client (undici leaves ending an async iterable to its owner).
   */
  abandonAttempt(): void {
    this.current = null;
    this.onSignal();
  }

  /** Chunk number `index` for an attempt: a kept one, the next one from the client, or null at the end. */
  async chunkAt(attempt: Attempt, index: number): Promise<Buffer | null> {
    if (index < this.handedOut) {
      // A replay: only possible while everything handed out is kept; callers check `replayable`.
      if (this.kept === null) throw new Error('request body is no longer replayable');
      return this.kept[index] as Buffer;
    }
    for (;;) {
      if (attempt !== this.current) throw new Error('attempt abandoned');
      if (this.clientError !== null) throw this.clientError;
      const chunk = this.req.read() as Buffer | null;
      if (chunk !== null) {
        this.receivedBytes += chunk.length;
        noteBodyBytes(chunk.length);
        if (this.maxBytes > 0 && this.receivedBytes > this.maxBytes) {
          this.clientError = new BodyTooLargeError(this.maxBytes);
          throw this.clientError;
        }
        this.keep(chunk);
        this.handedOut++;
        this.bodyLeft = true;
        return chunk;
      }
      if (this.ended) return null;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  private keep(chunk: Buffer): void {
    if (this.kept === null) return;
    this.keptBytes += chunk.length;
    if (this.keptBytes > this.capBytes) this.kept = null;
    else this.kept.push(chunk);
  }

  private readonly onSignal = (): void => {
    const wake = this.wake;
    if (wake !== null) {
      this.wake = null;
      wake();
    }
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    this.onSignal();
  };

  private readonly onError = (err: Error): void => {
    this.clientError = err;
    this.onSignal();
  };
}

class Attempt implements AsyncIterator<Buffer> {
  private readonly body: RequestBody;
  private index = 0;

  constructor(body: RequestBody) {
    this.body = body;
  }

  async next(): Promise<IteratorResult<Buffer>> {
    const chunk = await this.body.chunkAt(this, this.index);
    if (chunk === null) return { done: true, value: undefined };
    this.index++;
    return { done: false, value: chunk };
  }

  /** Called when the attempt is abandoned: leave the client's stream alone. */
  async return(): Promise<IteratorResult<Buffer>> {
    return { done: true, value: undefined };
  }
}
