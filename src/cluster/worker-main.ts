import '../v8-tuned.js';
import { runWorker } from './worker.js';

/** The entry point of worker processes (node:cluster forks this file). */
runWorker();
