#!/usr/bin/env node
// nydusctl: talks to nydusd's management API over its Unix socket (spec nydusd-runtime.md 5; nydusctl/main.ts).
import { UsageError } from '../argv.js';
import { run, USAGE } from './nydusctl/main.js';

// `nydusctl metrics ... | head` closes the pipe early: not an error worth a stack trace
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

run(process.argv.slice(2), { stdout: (t) => process.stdout.write(t) }).then(
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
