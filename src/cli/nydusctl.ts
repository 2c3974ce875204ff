#!/usr/bin/env node
// nydusctl talks to nydusd's management API over its Unix socket. The API is a later issue; until it lands
// this says so plainly instead of pretending to work.
process.stderr.write('nydusctl: not available yet: nydusd does not serve its management API (--apisock) in this version\n');
process.exit(1);
