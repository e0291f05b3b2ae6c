#!/usr/bin/env node
/**
 * The `switchyard` command. V8's settings (v8-tuned.ts) come first, and only then the rest, with
 * a dynamic import: a static import graph is parsed whole before any of it runs, and parsing it
 * alone grew the young generation to 8 MiB semi-spaces before the cap could be set.
 */
import './v8-tuned.js';

await import('./cli-main.js');
