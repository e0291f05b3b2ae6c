import type { AddressInfo } from 'node:net';
import { AggregatorRegistry } from 'prom-client';
import { createMetrics } from '../admin/metrics.js';
import { readinessOf } from '../readiness.js';
import { AdminServer, adminToken, type MetricsExporter, type WorkersView } from '../admin/server.js';
import { sumFigures, sumListenerTunnels } from '../admin/worker-figures.js';
import { resolveWorkers } from '../config/process-schema.js';
import type { Config, ConfigInput } from '../config/schema.js';
import { ConfigWatcher } from '../config/watch.js';
import { Runtime, type ReloadResult } from '../runtime.js';
import { ensureStickySecrets } from '../snapshot.js';
import { nextConfig, switchyardHandle, type LaunchOptions, type Switchyard } from '../switchyard.js';
import { DownReason, type Backend } from '../upstream/backend.js';
import { version } from '../version.js';
import type { DiscoveredBackend } from '../discovery/source.js';
import { workerDecidedReasons, type BackendState, type DiscoveredSetList, type ToPrimary, type ToWorker } from './messages.js';
import { WorkerSet, type Slot } from './workers.js';

/** How long the admin API waits for workers' figures, metrics and state acks. */
const askTimeoutMs = 1000;
/** How long a reload waits for each worker to apply the config. */
const applyTimeoutMs = 15_000;

const stateOf = (b: Backend): BackendState => ({ upstream: b.upstream, url: b.url, bits: b.downReasons });

/**
 * The primary of several worker processes (docs/workers.md): owns config load, validation and
 * reload, active health checks, sticky secrets, the admin API and merged metrics; workers own
 * the listeners and everything per request. A reload reaches every worker or none.
 */
export async function startPrimary(config: Config, options: LaunchOptions): Promise<Switchyard> {
  const { logger, file } = options;
  const token = config.admin === false ? undefined : adminToken(config.admin);
  const secrets = new Map<string, string>();
  ensureStickySecrets(config, secrets);
  // Down-reason changes are sent to the workers in one message per turn.
  const changed = new Set<Backend>();
  const flush = (): void => {
    if (changed.size === 0) return;
    const states = [...changed].map(stateOf);
    changed.clear();
    workers.broadcast({ type: 'swy:state', states });
  };
  const onBackendState = (backend: Backend): void => {
    if (changed.size === 0) queueMicrotask(flush);
    changed.add(backend);
  };
  // Discovery runs here alone (one watch per upstream, whatever the number of workers); each set
  // applied goes to the workers with its backends' states, so a worker never holds a new backend down.
  const onApplied = (upstream: string, set: readonly DiscoveredBackend[]): void => {
    const states = (runtime.snapshot.upstreams.get(upstream)?.backends ?? []).map(stateOf);
    workers.broadcast({ type: 'swy:discovered', upstream, set, states });
  };
  const runtime = new Runtime(config, logger, options.random, options.clock, { listen: false, healthChecks: true, stickySecrets: secrets, onBackendState, discovery: { onApplied } });
  const allStates = (): BackendState[] => [...runtime.snapshot.upstreams.values()].flatMap((u) => u.backends.map(stateOf));
  const allSets = (): DiscoveredSetList => [...runtime.discoveries.all()].map((d) => [d.upstream, d.current] as const);
  const findBackend = (upstream: string, url: string): Backend | undefined => runtime.snapshot.upstreams.get(upstream)?.backends.find((b) => b.url === url);
  /** Worker-decided reasons by backend, and which worker decided them: cleared if it dies. */
  const reportedBy = new Map<Backend, Slot>();

  const workers: WorkerSet = new WorkerSet(resolveWorkers(config.workers), logger, {
    init: (slot): ToWorker => ({ type: 'swy:init', workerId: slot.index + 1, workers: workers.slots.length, config: runtime.snapshot.config, secrets: [...secrets], states: allStates(), discovered: allSets(), logFormat: options.logFormat ?? config.log.format }),
    report: (slot, message) => applyReport(slot, message),
    replaced: (slot) => {
      // Started while a reload was applied: it gets the config in force now.
      if (slot.digest !== runtime.snapshot.digest) void applyTo([slot], runtime.snapshot.config, 'catch-up');
    },
    exited: (slot) => {
      for (const [backend, by] of reportedBy) {
        if (by !== slot) continue;
        reportedBy.delete(backend);
        backend.markUp(DownReason.ejected);
      }
    },
  });

  const applyReport = (slot: Slot, message: Extract<ToPrimary, { type: 'swy:report' }>): void => {
    const backend = findBackend(message.upstream, message.url);
    if (backend === undefined) return;
    for (const bit of [DownReason.failedAttempts, DownReason.ejected]) {
      if ((message.bits & bit) !== 0) backend.markDown(bit);
      else if (bit === DownReason.ejected) backend.markUp(bit);
    }
    if ((message.bits & workerDecidedReasons) === 0) reportedBy.delete(backend);
    else reportedBy.set(backend, slot);
  };

  const applyTo = async (slots: readonly Slot[] | undefined, next: Config, source: string) => {
    const replies = await workers.request((id) => ({ type: 'swy:apply', id, config: next, secrets: [...secrets], source }), applyTimeoutMs, slots);
    const asked = slots ?? workers.slots.filter((s) => s.ready);
    const ok: Slot[] = [];
    /** Asked but silent (stopped, or too slow): it may still apply `next` later. */
    const silent: Slot[] = [];
    let problem = '';
    let ignored: readonly string[] = [];
    for (const slot of asked) {
      const reply = replies.get(slot) as Extract<ToPrimary, { type: 'swy:applied' }> | undefined;
      if (reply?.ok === true) {
        ok.push(slot);
        slot.digest = reply.digest;
        ignored = reply.ignored;
      } else {
        if (reply === undefined) silent.push(slot);
        problem ||= `worker ${slot.index + 1}: ${reply === undefined ? `no answer within ${applyTimeoutMs / 1000}s` : reply.error}`;
      }
    }
    return { ok, silent, problem, ignored };
  };

  let reloading: Promise<unknown> = Promise.resolve();
  const reload = (source: string, input?: ConfigInput): Promise<ReloadResult> => {
    const run = reloading.then(() => reloadNow(source, input));
    reloading = run.catch(() => undefined);
    return run;
  };
  const reloadNow = async (source: string, input: ConfigInput | undefined): Promise<ReloadResult> => {
    let next: Config | string;
    try {
      next = nextConfig(options, input);
    } catch (err) {
      return runtime.reloadFailed(source, (err as Error).message);
    }
    if (typeof next === 'string') return runtime.reloadFailed(source, next);
    ensureStickySecrets(next, secrets);
    const old = runtime.snapshot.config;
    // Workers first: a worker that cannot apply it (a listener that will not open) fails the reload.
    const applied = await applyTo(undefined, next, source);
    let result: ReloadResult | null = null;
    if (applied.problem === '') {
      result = await runtime.apply(next, source);
      if (result.ok) {
        if (next.log.level !== logger.level) logger.level = next.log.level;
        return applied.ignored.length === 0 ? result : { ...result, ignored: [...new Set([...applied.ignored, ...result.ignored])] };
      }
    }
    // All or none: the workers that took it go back to the config in force. A silent worker is
    // sent the same without waiting: it applies messages in order, so it ends on the old config too.
    if (applied.silent.length > 0) void applyTo(applied.silent, old, `${source}, undone`);
    if (applied.ok.length > 0) await applyTo(applied.ok, old, `${source}, undone`);
    if (result !== null) return result;
    const undone = applied.ok.length > 0 ? ` (${applied.ok.length} other worker${applied.ok.length === 1 ? '' : 's'} went back to the running config)` : '';
    return runtime.reloadFailed(source, `${applied.problem}${undone}`);
  };

  for (const upstream of runtime.snapshot.upstreams.values()) {
    for (const backend of upstream.backends) logger.info({ upstream: upstream.name, backend: backend.url }, `Configured server: ${backend.url}`);
  }
  await runtime.start();
  await workers.start();
  const listeners = workers.slots[0]?.listeners ?? [];
  for (const listener of listeners) logger.info({ address: listener.address, port: listener.port, workers: workers.slots.length }, `Load Balancer started at :${listener.port} with ${workers.slots.length} workers`);

  const view: WorkersView = {
    listeners: () => workers.slots.find((s) => s.ready)?.listeners ?? listeners,
    list: () => workers.slots.map((s) => ({ id: s.index + 1, pid: s.worker?.process.pid ?? null, serving: s.ready, startedAt: s.startedAt.toISOString() })),
    figures: async () => sumFigures(await workers.ask('figures', askTimeoutMs)),
    listenerTunnels: async () => sumListenerTunnels(await workers.ask('listeners', askTimeoutMs)),
    sync: async () => {
      flush();
      await workers.ask('ping', askTimeoutMs);
    },
  };
  // GET /ready: the first health round is done before the admin listener opens.
  const phase = { draining: false };
  const ready = () => readinessOf({ draining: phase.draining, listening: workers.slots.some((s) => s.ready), firstHealthRoundDone: true, awaitingDiscovery: runtime.discoveries.awaiting() });
  let admin: AdminServer | null = null;
  let watcher: ConfigWatcher | null = null;
  try {
    if (config.admin !== false) {
      const own = createMetrics({ upstreams: () => runtime.snapshot.upstreams.values(), certificates: () => runtime.certificates(), discoveries: () => runtime.discoveries.all() });
      // Every worker's registry merged with the primary's by prom-client's aggregator (counters summed).
      const metrics: MetricsExporter = {
        contentType: own.contentType,
        text: async () => AggregatorRegistry.aggregate([await own.json(), ...(await workers.ask('metrics', askTimeoutMs))] as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics(),
        close: () => own.close(),
      };
      admin = new AdminServer({ runtime, logger, version, host: config.admin.host, port: config.admin.port, token, configSource: file ?? 'flags', reload: () => reload('api'), metrics, workers: view, ready });
      await admin.listen();
    }
    if (file !== null && options.watch) watcher = new ConfigWatcher(file, () => void reload('file'), logger);
  } catch (err) {
    await workers.stop(0);
    await runtime.close(0);
    throw err;
  }

  const first = listeners[0] ?? { address: '127.0.0.1', port: 0, url: '' };
  const address: AddressInfo = { address: first.address, port: first.port, family: first.address.includes(':') ? 'IPv6' : 'IPv4' };
  return switchyardHandle({
    address,
    urls: listeners.map((l) => l.url),
    runtime,
    adminUrl: admin === null ? null : admin.url,
    logger,
    reload,
    stop: async () => {
      phase.draining = true;
      watcher?.close();
      await workers.stop(runtime.snapshot.config.gracePeriod);
      // The admin listener outlives the drain, so /ready answers 503 meanwhile.
      await runtime.close(0);
      await admin?.close();
    },
  });
}
