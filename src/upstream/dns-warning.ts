import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from '../log.js';
import type { Backend } from './backend.js';

/**
 * At start, looks up each backend's host name once and warns about one that does not resolve: a
 * typo shows at once instead of as connect failures. Only a warning, since DNS may come up later.
 * IP literals are skipped; the wait is bounded so a slow resolver never holds start-up for long.
 */
export async function warnUnresolvedBackends(backends: Iterable<{ readonly upstream: string; readonly backend: Backend }>, logger: Logger, timeoutMs = 2000): Promise<void> {
  const byHost = new Map<string, { upstream: string; backend: Backend }[]>();
  for (const entry of backends) {
    const host = entry.backend.hostname;
    if (isIP(host) !== 0) continue;
    const list = byHost.get(host) ?? [];
    list.push(entry);
    byHost.set(host, list);
  }
  if (byHost.size === 0) return;
  const warn = (host: string, why: string): void => {
    for (const { upstream, backend } of byHost.get(host) ?? []) {
      logger.warn({ upstream, backend: backend.url, host }, `backend ${backend.url}: host "${host}" does not resolve (${why}); connections to it will fail until it does`);
    }
  };
  const pending = new Set(byHost.keys());
  const lookups = [...byHost.keys()].map((host) =>
    lookup(host).then(
      () => pending.delete(host),
      (err: NodeJS.ErrnoException) => {
        if (pending.delete(host)) warn(host, err.code ?? err.message);
      },
    ),
  );
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
    timer.unref();
  });
  await Promise.race([Promise.all(lookups), bound]);
  clearTimeout(timer);
  for (const host of [...pending]) {
    pending.delete(host);
    warn(host, `no answer within ${timeoutMs}ms`);
  }
}
