import { createMetrics, type Metrics } from '../admin/metrics.js';
import { figuresOf } from '../admin/worker-figures.js';
import { systemClock } from '../clock.js';
import { ConfigError } from '../errors.js';
import { createLogger, guardStream, type Logger } from '../log.js';
import { Runtime } from '../runtime.js';
import { downReasonNames, type Backend } from '../upstream/backend.js';
import { isMessage, workerDecidedReasons, type Answers, type ToPrimary, type ToWorker } from './messages.js';
import { StateMirror } from './state-mirror.js';

/**
 * A worker process: listeners, pools, balancers and passive outlier counting, on the config the
 * primary sends. Backend down reasons mirror the primary's; what this worker decides from its own
 * traffic (failed attempts, ejections) is reported, and comes back to every worker from the primary.
 */
class Worker {
  private readonly runtime: Runtime;
  private readonly logger: Logger;
  private readonly secrets: Map<string, string>;
  private readonly metrics: Metrics | null;
  private readonly mirror: StateMirror;
  private stopping = false;

  constructor(init: Extract<ToWorker, { type: 'swy:init' }>) {
    const { config } = init;
    this.logger = createLogger({ level: config.log.level, ...(init.logFormat === undefined ? {} : { format: init.logFormat }) }).child({ worker: init.workerId });
    this.secrets = new Map(init.secrets);
    this.runtime = new Runtime(config, this.logger, undefined, systemClock, {
      listen: true,
      healthChecks: false,
      stickySecrets: this.secrets,
      onBackendState: this.report,
      acceptShare: init.workers,
      announce: false,
      discovery: { follow: new Map(init.discovered) },
    });
    this.mirror = new StateMirror(this.runtime);
    this.mirror.apply(init.states);
    // Per-request metrics are counted here; the primary merges every worker's at scrape.
    this.metrics = config.admin === false ? null : createMetrics({ upstreams: () => this.runtime.snapshot.upstreams.values(), listenerTunnels: () => this.runtime.listenerTunnels() }, { scope: 'worker' });
  }

  async start(): Promise<void> {
    await this.runtime.start();
    const urls = this.runtime.urls;
    const listeners = this.runtime.addresses.map((a, i) => ({ address: a.address, port: a.port, url: urls[i] ?? '' }));
    send({ type: 'swy:ready', digest: this.runtime.snapshot.digest, listeners });
  }

  readonly onMessage = (message: ToWorker): void => {
    if (message.type === 'swy:state') this.mirror.apply(message.states);
    else if (message.type === 'swy:discovered') this.mirror.follow(message);
    else if (message.type === 'swy:apply') void this.apply(message);
    else if (message.type === 'swy:ask') void this.answer(message.id, message.question);
    else if (message.type === 'swy:stop') this.stop(message.graceMs);
  };

  private async apply(message: Extract<ToWorker, { type: 'swy:apply' }>): Promise<void> {
    for (const [name, secret] of message.secrets) this.secrets.set(name, secret);
    const result = await this.runtime.apply(message.config, message.source);
    if (result.ok && message.config.log.level !== this.logger.level) this.logger.level = message.config.log.level;
    send({ type: 'swy:applied', id: message.id, ok: result.ok, error: result.error, digest: result.digest, ignored: result.ignored });
  }

  private async answer(id: number, question: keyof Answers): Promise<void> {
    let value: Answers[keyof Answers] = null;
    if (question === 'metrics') value = this.metrics === null ? [] : await this.metrics.json();
    else if (question === 'figures') value = [...this.runtime.snapshot.upstreams.values()].flatMap((u) => u.backends.map(figuresOf));
    else if (question === 'listeners') value = this.runtime.listenerTunnels();
    send({ type: 'swy:answer', id, value });
  }

  /** A down reason this worker set or cleared itself goes to the primary, which decides for all. */
  private readonly report = (backend: Backend): void => {
    // Undefined while the runtime is built (nothing decided by this worker yet).
    if ((this.mirror as StateMirror | undefined) === undefined || this.mirror.applying) return;
    const bits = backend.downReasons & workerDecidedReasons;
    if (bits === (this.mirror.synced.get(backend) ?? 0)) return;
    this.mirror.synced.set(backend, bits);
    this.logger.debug({ backend: backend.url, reasons: downReasonNames(bits) }, `reporting ${backend.url} to the primary`);
    send({ type: 'swy:report', upstream: backend.upstream, url: backend.url, bits });
  };

  get graceMs(): number {
    return this.runtime.snapshot.config.gracePeriod;
  }

  /** Drains: no new connections, in-flight requests finish within `graceMs`, then exits. */
  stop(graceMs: number): void {
    if (this.stopping) return;
    this.stopping = true;
    this.runtime
      .close(graceMs)
      .then(() => this.metrics?.close())
      .finally(() => {
        this.logger.flush?.();
        process.exit(0);
      });
  }
}

function send(message: ToPrimary): void {
  if (process.connected) process.send?.(message);
}

/** Runs this process as a worker: says hello, then waits for the primary's config. */
export function runWorker(): void {
  guardStream(process.stdout, 'log output (stdout)');
  guardStream(process.stderr);
  let worker: Worker | null = null;
  // The primary coordinates shutdown; a signal sent to the whole group (Ctrl-C) drains here too.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => (worker === null ? process.exit(0) : worker.stop(worker.graceMs)));
  process.on('SIGHUP', () => undefined);
  process.on('message', (message: unknown) => {
    if (!isMessage<ToWorker>(message)) return;
    if (message.type === 'swy:stop' && worker === null) process.exit(0);
    if (message.type !== 'swy:init') return worker?.onMessage(message);
    if (worker !== null) return;
    try {
      worker = new Worker(message);
    } catch (err) {
      return failed(err);
    }
    worker.start().catch(failed);
  });
  send({ type: 'swy:hello' });
}

function failed(err: unknown): void {
  const message: ToPrimary = { type: 'swy:failed', error: (err as Error).message ?? String(err), usage: err instanceof ConfigError };
  if (process.connected && process.send !== undefined) process.send(message, () => process.exit(1));
  else process.exit(1);
}
