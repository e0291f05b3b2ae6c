import { tuneGarbageCollector } from './gc-tuning.js';

/**
 * Imported first by the CLI and the worker entry point, for this side effect: ES modules are
 * evaluated in import order, so V8's settings (gc-tuning.ts) are in force while the rest loads,
 * including for the full GC that module loading triggers, which sets the first heap limit.
 */
tuneGarbageCollector();
