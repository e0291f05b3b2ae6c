import type { ClientHttp2Stream, IncomingHttpHeaders } from 'node:http2';

/**
 * The stream events an attempt handles. The listeners are shared functions that find the
 * attempt on the stream: no closure per stream and event.
 */
export interface StreamEvents {
  readonly done: boolean;
  onResponse(headers: IncomingHttpHeaders): void;
  onInterim(headers: IncomingHttpHeaders): void;
  onData(chunk: Buffer): void;
  onTrailers(headers: IncomingHttpHeaders): void;
  onEnd(): void;
  onError(err: Error): void;
  onClose(): void;
  onWantTrailers(): void;
  onDrain(): void;
  onTimer(): void;
}

const kAttempt = Symbol('switchyard.h2Attempt');
export type AttemptStream = ClientHttp2Stream & { [kAttempt]?: StreamEvents };

/** Wires `stream`'s events to `attempt`; 'wantTrailers' only when the stream waits for trailers. */
export function listen(stream: AttemptStream, attempt: StreamEvents, wantTrailers: boolean): void {
  stream[kAttempt] = attempt;
  stream.on('response', onResponse);
  stream.on('headers', onInterim);
  stream.on('data', onData);
  stream.on('trailers', onTrailers);
  stream.on('end', onEnd);
  stream.on('error', onError);
  stream.on('close', onClose);
  if (wantTrailers) stream.on('wantTrailers', onWantTrailers);
}

/** For a streamed request body: the writer waits for 'drain'. */
export function listenForDrain(stream: AttemptStream): void {
  stream.on('drain', onDrain);
}

export function onAttemptTimer(attempt: StreamEvents): void {
  attempt.onTimer();
}

function attemptOf(stream: AttemptStream): StreamEvents | undefined {
  return stream[kAttempt];
}
function onResponse(this: AttemptStream, headers: IncomingHttpHeaders): void {
  const a = attemptOf(this);
  if (a !== undefined && !a.done) a.onResponse(headers);
}
function onInterim(this: AttemptStream, headers: IncomingHttpHeaders): void {
  const a = attemptOf(this);
  if (a !== undefined && !a.done) a.onInterim(headers);
}
function onData(this: AttemptStream, chunk: Buffer): void {
  const a = attemptOf(this);
  if (a !== undefined && !a.done) a.onData(chunk);
}
function onTrailers(this: AttemptStream, headers: IncomingHttpHeaders): void {
  attemptOf(this)?.onTrailers(headers);
}
function onEnd(this: AttemptStream): void {
  attemptOf(this)?.onEnd();
}
function onError(this: AttemptStream, err: Error): void {
  attemptOf(this)?.onError(err);
}
function onClose(this: AttemptStream): void {
  attemptOf(this)?.onClose();
}
function onWantTrailers(this: AttemptStream): void {
  attemptOf(this)?.onWantTrailers();
}
function onDrain(this: AttemptStream): void {
  attemptOf(this)?.onDrain();
}
