// schemathesis (PyPI, installed by scripts/setup.sh) against api/v1.yaml and api/v2.yaml on a live daemon (issue 9
// acceptance "Bad input"): generated valid and invalid requests for every operation that does not stop or change the
// daemon, checked for documented statuses, response bodies that match their schemas, the documented content type,
// invalid data rejected with a 4xx, and no crash. The daemon listens on a Unix socket; schemathesis speaks TCP, so a
// loopback proxy in this process carries its connections to the socket.
//
// Checks left out, with the reason:
// - not_a_server_error: the reference answers 500 for documented cases (nothing mounted at a mountpoint, an unknown
//   log level: nydusd-runtime.md 3.3), which the documents list; status_code_conformance checks them instead;
// - positive_data_acceptance: a schema-valid body may still be refused (a log level that is a string but none of six);
// - unsupported_method: it wants 405 for an undocumented method; the reference answers 400 BadRequest (spec 3.2).
// Excluded operations: exit stops the daemon, mount/remount/umount change it (and land separately), sendfd and
// takeover belong to failover. Reproduce with NYDUS_SCHEMATHESIS_SEED=<seed> (printed).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../helpers/paths.js';
import { cleanupDaemons, removeDir, requireEnv } from '../nydusd/helpers.js';
import { assertServing, startApiDaemon, type ApiDaemon } from './helpers.js';

/** Where scripts/setup.sh links the pinned schemathesis venv. */
const TOOLS_CACHE = process.env.NYDUS_TS_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'nydus-ts');
const ST = path.join(TOOLS_CACHE, 'schemathesis', 'bin', 'st');
const SEED = process.env.NYDUS_SCHEMATHESIS_SEED !== undefined ? Number(process.env.NYDUS_SCHEMATHESIS_SEED) : Math.floor(Math.random() * 2 ** 31);
/** Per operation and phase; with the stateful phase this keeps both documents under about a minute. */
const MAX_EXAMPLES = 50;
const EXCLUDED = ['exitDaemon', 'mountFilesystem', 'remountFilesystem', 'umountFilesystem', 'sendFuseFd', 'takeoverFuseFd'];
const CHECKS = ['status_code_conformance', 'response_schema_conformance', 'content_type_conformance', 'response_headers_conformance', 'negative_data_rejection', 'missing_required_header', 'use_after_free', 'ensure_resource_availability'];
/** A bound against a hang only; a run takes well under a minute per document. */
const RUN_BOUND_MS = 240_000;

let d: ApiDaemon;
let proxy: net.Server;
let port: number;

before(async () => {
  requireEnv();
  if (!existsSync(ST)) throw new Error(`schemathesis is missing (${ST}): run scripts/setup.sh, which installs it from PyPI`);
  d = await startApiDaemon();
  // loopback TCP -> the daemon's Unix socket, one socket connection per TCP connection
  proxy = net.createServer((c) => {
    const u = net.connect(d.sock);
    const close = () => {
      c.destroy();
      u.destroy();
    };
    c.pipe(u);
    u.pipe(c);
    c.on('error', close).on('close', close);
    u.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  port = (proxy.address() as net.AddressInfo).port;
});

after(async () => {
  proxy?.close();
  await cleanupDaemons();
  if (d) removeDir(d.dir);
});

function runSchemathesis(document: string): Promise<{ code: number | null; output: string }> {
  const args = [
    'run', path.join(projectRoot, 'api', document),
    '--url', `http://127.0.0.1:${port}`,
    '--checks', CHECKS.join(','),
    ...EXCLUDED.flatMap((id) => ['--exclude-operation-id', id]),
    '--max-examples', String(MAX_EXAMPLES),
    '--seed', String(SEED),
    '--request-timeout', '30',
    '--no-color',
  ];
  return new Promise((resolve, reject) => {
    // its own working directory: nothing it may write lands in the project
    const child = spawn(ST, args, { cwd: d.dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', COLUMNS: '120' } });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (output += s));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`schemathesis on ${document} did not finish within ${RUN_BOUND_MS} ms: ${output.slice(-4000)}`));
    }, RUN_BOUND_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

for (const document of ['v1.yaml', 'v2.yaml']) {
  test(`schemathesis on api/${document}: documented statuses, conforming bodies, invalid data rejected, no crash`, async (t) => {
    t.diagnostic(`NYDUS_SCHEMATHESIS_SEED=${SEED}`);
    const { code, output } = await runSchemathesis(document);
    const summary = /Test cases:\s*\n\s*(.*)/.exec(output)?.[1] ?? '';
    t.diagnostic(`api/${document}: ${summary}`);
    assert.equal(code, 0, `schemathesis found failures on api/${document} (seed ${SEED}):\n${output.slice(-12_000)}`);
    // it did test something: every selected operation, with generated cases
    assert.match(output, /Tested: (\d+)/, output.slice(-2000));
    assert.ok(Number(/Tested: (\d+)/.exec(output)![1]) > 0, output.slice(-2000));
    assert.match(summary, /^\d+ generated, \d+ passed/, output.slice(-2000));
    await assertServing(d, `after schemathesis on api/${document} (seed ${SEED})`);
  });
}
