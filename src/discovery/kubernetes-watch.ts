import { KubernetesError } from './kubernetes-connection.js';
import type { EndpointSlice } from './kubernetes-slices.js';

/** What one watch event did: changed the slices, moved the version only (a bookmark), or ended the watch (410). */
export type WatchStep =
  | { readonly kind: 'changed' | 'bookmark'; readonly version: string }
  | { readonly kind: 'expired'; readonly why: string };

interface WatchEvent {
  readonly type?: unknown;
  readonly object?: (EndpointSlice & { readonly code?: unknown; readonly message?: unknown }) | null;
}

/**
 * Applies one line of a watch (`{"type":…,"object":…}`) to `slices`, keyed by name. Throws a
 * KubernetesError starting with `context` for a line that is not an event, or an ERROR event
 * other than 410 Gone (which means: list again).
 */
export function applyWatchLine(slices: Map<string, EndpointSlice>, line: string, context: string): WatchStep {
  let event: WatchEvent;
  try {
    event = JSON.parse(line) as WatchEvent;
  } catch (err) {
    throw new KubernetesError(undefined, `${context}: bad JSON in a watch event: ${(err as Error).message}`, { cause: err });
  }
  const object = event.object;
  if (event.type === 'ERROR') {
    if (object?.code === 410) return { kind: 'expired', why: `ERROR event: ${String(object.message)}` };
    throw new KubernetesError(Number(object?.code ?? 0), `${context}: ERROR event: ${String(object?.code)} ${String(object?.message)}`);
  }
  const version = object?.metadata?.resourceVersion;
  if (object == null || typeof version !== 'string') throw new KubernetesError(undefined, `${context}: a ${String(event.type)} event without metadata.resourceVersion`);
  const name = object.metadata?.name ?? '';
  if (event.type === 'BOOKMARK') return { kind: 'bookmark', version };
  if (event.type === 'ADDED' || event.type === 'MODIFIED') slices.set(name, object);
  else if (event.type === 'DELETED') slices.delete(name);
  else throw new KubernetesError(undefined, `${context}: unknown watch event type ${JSON.stringify(event.type)}`);
  return { kind: 'changed', version };
}

/** The slices and resourceVersion of an `EndpointSliceList`; throws a KubernetesError starting with `context` for anything else. */
export function readList(list: unknown, context: string): { readonly slices: Map<string, EndpointSlice>; readonly version: string } {
  const body = list as { items?: unknown; metadata?: { resourceVersion?: unknown } } | null;
  const version = body?.metadata?.resourceVersion;
  if (!Array.isArray(body?.items) || typeof version !== 'string') {
    throw new KubernetesError(undefined, `${context}: not an EndpointSliceList (no items or metadata.resourceVersion)`);
  }
  const slices = new Map<string, EndpointSlice>();
  for (const item of body.items as EndpointSlice[]) slices.set(item.metadata?.name ?? '', item);
  return { slices, version };
}

/** The complete lines of a response body, as they arrive; a last line without newline is yielded too. */
export async function* ndjsonLines(body: AsyncIterable<Buffer | string>): AsyncGenerator<string> {
  let pending = '';
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    pending += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let newline = pending.indexOf('\n');
    while (newline !== -1) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line !== '') yield line;
      newline = pending.indexOf('\n');
    }
  }
  const rest = (pending + decoder.decode()).trim();
  if (rest !== '') yield rest;
}
