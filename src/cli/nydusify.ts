#!/usr/bin/env node
// nydusify: converts OCI images to Nydus images, checks, mounts and preheats them (nydusify/main.ts).
import { runCli } from './entry.js';
import { run, USAGE } from './nydusify/main.js';

runCli(() => run(process.argv.slice(2)), USAGE);
