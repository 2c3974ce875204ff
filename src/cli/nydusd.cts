#!/usr/bin/env node
// nydusd's entry point. CommonJS on purpose: the libuv pool reads UV_THREADPOOL_SIZE once, when it first
// starts, and an ES module entry is itself read through that pool, so only a CommonJS entry (read
// synchronously) can still size it. The pool decodes chunks, reads the backend and writes the cache;
// four threads (the default) left decodes queued behind blocking reads and writes (BENCHMARKS.md, run G).
process.env.UV_THREADPOOL_SIZE ??= '8';
void import('./nydusd-main.js');
