import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';

/** Quiet time after the last change before a reload: editors write a file in several steps. */
export const watchDebounceMs = 250;

function digestOf(file: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return null;
  }
}

/**
 * Watches a config file and calls `onChange` once its content has changed and then stayed put
 * for `watchDebounceMs`. Watches the directory, not the file, because many editors save by
 * writing a new file and renaming it over the old one, which ends a watch on the old inode.
 */
export class ConfigWatcher {
  private readonly watcher: FSWatcher;
  private timer: NodeJS.Timeout | null = null;
  private lastDigest: string | null;

  constructor(file: string, onChange: () => void, logger: Logger) {
    const name = path.basename(file);
    this.lastDigest = digestOf(file);
    this.watcher = watch(path.dirname(path.resolve(file)), { persistent: false }, (_event, changed) => {
      if (changed !== null && changed !== name) return;
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.timer = null;
        const digest = digestOf(file);
        // A missing file (mid-rename) or unchanged content is not a reload.
        if (digest === null || digest === this.lastDigest) return;
        this.lastDigest = digest;
        logger.info({ file }, `${file} changed: reloading`);
        onChange();
      }, watchDebounceMs);
    });
    this.watcher.on('error', (err) => logger.warn({ file, error: err.message }, `watching ${file} stopped: ${err.message}`));
  }

  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.watcher.close();
  }
}
