#!/usr/bin/env node
// nydusctl: talks to nydusd's management API over its Unix socket (spec nydusd-runtime.md 5; nydusctl/main.ts).
import { runCli } from './entry.js';
import { run, USAGE } from './nydusctl/main.js';

runCli(() => run(process.argv.slice(2), { stdout: (t) => process.stdout.write(t) }), USAGE);
