#!/usr/bin/env node
// nydus-image: builds, merges, inspects, checks and unpacks RAFS images.
import { errorText, main } from './nydus-image/main.js';

// `nydus-image inspect | head` closes the pipe early; that is not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(errorText(e));
    process.exitCode = 1;
  },
);
