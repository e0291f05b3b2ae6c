import '../v8-tuned.js';

/** The entry point of worker processes (node:cluster forks this file); the rest loads once V8's settings are in force (see cli.ts). */
const { runWorker } = await import('./worker.js');
runWorker();
