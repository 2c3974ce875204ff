// Start-up time: the heavy packages load only for the invocations that use them (nydusd's start is mostly module
// loading). A localfs image with a JSON configuration loads neither the HTTP client (undici, for the network
// backends, storage/backend/factory.ts) nor the TOML and YAML parsers (config/parse.ts); the API server reads its
// documents without the YAML parser (api/documents.ts). Each case runs in a fresh node process and reports the
// packages that process loaded, from require.cache: undici, yaml and fastify are CommonJS packages, and parse.ts
// requires smol-toml's CommonJS build.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { projectRoot } from '../helpers/paths.js';

const HEAVY = ['undici', 'yaml', 'smol-toml', 'fastify'];

/** the JS of `heavyLoaded(list)`: which of `list` the running process has loaded (from require.cache) */
const HEAVY_LOADED = "const heavyLoaded = (list) => { const loaded = Object.keys(createRequire(import.meta.url).cache); return list.filter((p) => loaded.some((f) => f.includes('/node_modules/' + p + '/'))); };";

/** Runs `body` (an ES module body with `dist` bound to the built tree) and returns the HEAVY packages it loaded. */
function packagesLoadedBy(body: string): string[] {
  const script = [
    "import { createRequire } from 'node:module';",
    `const dist = ${JSON.stringify(path.join(projectRoot, 'dist', 'src'))};`,
    HEAVY_LOADED,
    body,
    `process.stdout.write(JSON.stringify(heavyLoaded(${JSON.stringify(HEAVY)})));`,
  ].join('\n');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

const V2 = (backend: unknown) => JSON.stringify({ version: 2, backend, cache: { type: 'blobcache', filecache: { work_dir: '/tmp' } }, rafs: { mode: 'direct' } });

test('the daemon core, a JSON configuration and a localfs backend load none of the heavy packages', () => {
  const loaded = packagesLoadedBy(`
    await import(dist + '/service/daemon.js');
    await import(dist + '/service/rafs-instance.js');
    const { parseConfig } = await import(dist + '/config/parse.js');
    const { createBackend } = await import(dist + '/storage/backend/factory.js');
    const backend = await createBackend(parseConfig(${JSON.stringify(V2({ type: 'localfs', localfs: { dir: '/tmp' } }))}).backend);
    if (backend.kind !== 'localfs') throw new Error('created ' + backend.kind);
    await backend.close();
  `);
  assert.deepEqual(loaded, []);
});

test('a registry backend brings the HTTP client when it is created', () => {
  const loaded = packagesLoadedBy(`
    const { parseConfig } = await import(dist + '/config/parse.js');
    const { createBackend } = await import(dist + '/storage/backend/factory.js');
    const config = parseConfig(${JSON.stringify(V2({ type: 'registry', registry: { host: '127.0.0.1:9', repo: 'library/x', scheme: 'http' } }))});
    const backend = await createBackend(config.backend);
    await backend.close();
  `);
  assert.deepEqual(loaded, ['undici']);
});

test('a TOML configuration brings the TOML parser, a YAML one both parsers (TOML is tried first)', () => {
  const toml = 'version = 2\n[backend]\ntype = "localfs"\n[backend.localfs]\ndir = "/tmp"\n[cache]\ntype = "blobcache"\n[cache.filecache]\nwork_dir = "/tmp"\n';
  const yaml = 'version: 2\nbackend:\n  type: localfs\n  localfs:\n    dir: /tmp\ncache:\n  type: blobcache\n  filecache:\n    work_dir: /tmp\n';
  const parse = (text: string) => `
    const { parseConfig } = await import(dist + '/config/parse.js');
    if (parseConfig(${JSON.stringify(text)}).backend.type !== 'localfs') throw new Error('not parsed');
  `;
  assert.deepEqual(packagesLoadedBy(parse(toml)), ['smol-toml']);
  assert.deepEqual(packagesLoadedBy(parse(yaml)), ['yaml', 'smol-toml']);
});

test('the API server and its routes load fastify but not the YAML parser', () => {
  const loaded = packagesLoadedBy(`
    await import(dist + '/api/server.js');
    const { loadApiRoutes } = await import(dist + '/api/documents.js');
    if (!loadApiRoutes().some((r) => r.operationId === 'describeDaemon')) throw new Error('no routes');
  `);
  assert.deepEqual(loaded, ['fastify']);
});

/** Starts the API server with every documented route answering {}, runs `body` with `ask` and `server`, then closes it. */
function withApiServer(body: string): string[] {
  return packagesLoadedBy(`
    const { request } = await import(${JSON.stringify(path.join(projectRoot, 'dist', 'test', 'api', 'helpers.js'))});
    const { ApiServer } = await import(dist + '/api/server.js');
    const { loadApiRoutes } = await import(dist + '/api/documents.js');
    const { Logger } = await import(dist + '/service/logger.js');
    const routes = loadApiRoutes();
    const handlers = Object.fromEntries(routes.map((r) => [r.operationId, { wrapper: 'Test', handle: () => ({}) }]));
    const socketPath = '/tmp/nydus-ts-lazy-ajv-' + process.pid + '.sock';
    const server = await ApiServer.start({ socketPath, context: {}, log: new Logger('off'), routes, handlers });
    const ask = async (method, url, body) => {
      const r = await request(socketPath, method, url, { body });
      return r.status + ' ' + r.text;
    };
    const wrongType = async () => {
      const bad = await ask('PUT', '/api/v1/daemon', JSON.stringify({ log_level: 5 }));
      if (!/^400 .*"ParseBody: body \\/log_level must be string"/.test(bad)) throw new Error('a wrong type was answered ' + bad);
      const good = await ask('PUT', '/api/v1/daemon', JSON.stringify({ log_level: 'info' }));
      if (!good.startsWith('200 ')) throw new Error('a valid body was answered ' + good);
    };
    try {
      if (heavyLoaded(['ajv']).length) throw new Error('ajv loaded while the server started');
      ${body}
    } finally {
      await server.close();
    }
  `);
}

test('the API server compiles its schemas with ajv on the first validated request, not while it starts', () => {
  const loaded = withApiServer(`
    // a route without query parameters or body (the snapshotter's liveness poll) validates nothing
    const info = await ask('GET', '/api/v1/daemon?unknown=1');
    if (!info.startsWith('200 ')) throw new Error('GET /api/v1/daemon was answered ' + info);
    if (heavyLoaded(['ajv']).length) throw new Error('GET /api/v1/daemon loaded ajv');
    await wrongType();
    if (heavyLoaded(['ajv']).length !== 1) throw new Error('the body was checked without ajv');
  `);
  assert.deepEqual(loaded, ['fastify']);
});

test('compileSchemas compiles them ahead (a shared daemon, while idle), and validation is unchanged', () => {
  const loaded = withApiServer(`
    server.compileSchemas();
    if (heavyLoaded(['ajv']).length !== 1) throw new Error('compileSchemas did not load ajv');
    await wrongType();
  `);
  assert.deepEqual(loaded, ['fastify']);
});
