#!/usr/bin/env node
// nydusify: converts OCI images to Nydus images, checks and mounts them (nydusify/main.ts).
import { UsageError } from '../argv.js';
import { run, USAGE } from './nydusify/main.js';

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\n\n${USAGE}`);
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
