import { tuneGarbageCollector } from '../gc-tuning.js';
import { runWorker } from './worker.js';

/** The entry point of worker processes (node:cluster forks this file). */
tuneGarbageCollector();
runWorker();
