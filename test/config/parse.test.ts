import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, type BackendConfig } from '../../src/config/model.js';
import { localfsDirConfig, parseConfig } from '../../src/config/parse.js';

/** The backend's own settings, after checking its type. */
function backendOf<T extends BackendConfig['type']>(b: BackendConfig | undefined, type: T): Extract<BackendConfig, { type: T }> {
  assert.equal(b?.type, type);
  return b as Extract<BackendConfig, { type: T }>;
}

const snapshotterV1 = JSON.stringify({
  device: {
    id: '/8',
    backend: {
      type: 'registry',
      config: {
        readahead: false, host: 'ghcr.io', repo: 'dragonflyoss/image-service/nginx', auth: 'dXNlcjpwYXNz', scheme: 'https',
        skip_verify: false, proxy: { url: 'http://127.0.0.1:4001', fallback: true, ping_url: 'http://127.0.0.1:4001', check_interval: 5 },
        timeout: 5, connect_timeout: 5, retry_limit: 2,
      },
    },
    cache: { type: 'blobcache', config: { work_dir: '/var/cache/nydus', disable_indexed_map: false } },
  },
  mode: 'direct', digest_validate: false, enable_xattr: true, id_mapping: [], warmup: 1,
  fs_prefetch: { enable: true, prefetch_all: true, threads_count: 8, merging_size: 1048576, bandwidth_rate: 0 },
});

test('the snapshotter v1 config converts to v2 with its values and ignores unknown keys', () => {
  const c = parseConfig(snapshotterV1);
  assert.equal(c.id, '/8');
  assert.equal(c.backend?.type, 'registry');
  const reg = backendOf(c.backend, 'registry').registry;
  assert.equal(reg.host, 'ghcr.io');
  assert.equal(reg.auth, 'dXNlcjpwYXNz');
  assert.equal(reg.proxy.url, 'http://127.0.0.1:4001');
  assert.equal(c.cache?.type, 'blobcache');
  assert.equal(c.cache?.filecache?.work_dir, '/var/cache/nydus');
  assert.equal(c.rafs?.mode, 'direct');
  assert.equal(c.rafs?.enable_xattr, true);
  // v1 fs_prefetch feeds both prefetch objects
  assert.equal(c.rafs?.prefetch.enable, true);
  assert.equal(c.cache?.prefetch.threads, 8);
  assert.equal(c.cache?.prefetch.prefetch_all, true);
});

test('v2 TOML and YAML give the same model as v2 JSON', () => {
  const toml = `version = 2
id = "/8"
[backend]
type = "localfs"
[backend.localfs]
dir = "/blobs"
[cache]
type = "blobcache"
[cache.filecache]
work_dir = "/cache"
[rafs]
mode = "direct"
`;
  const json = JSON.stringify({ version: 2, id: '/8', backend: { type: 'localfs', localfs: { dir: '/blobs' } }, cache: { type: 'blobcache', filecache: { work_dir: '/cache' } }, rafs: { mode: 'direct' } });
  const yaml = 'version: 2\nid: /8\nbackend:\n  type: localfs\n  localfs:\n    dir: /blobs\ncache:\n  type: blobcache\n  filecache:\n    work_dir: /cache\nrafs:\n  mode: direct\n';
  const a = parseConfig(json);
  assert.deepEqual(parseConfig(toml), a);
  assert.deepEqual(parseConfig(yaml), a);
  assert.equal(a.rafs?.batch_size, 1048576);
  assert.equal(a.rafs?.prefetch.enable, false);
  assert.deepEqual(localfsDirConfig('/blobs').backend, { type: 'localfs', localfs: { blob_file: '', dir: '/blobs', alt_dirs: [], timeout: 0 } });
});

test('invalid documents are rejected with the reason', () => {
  const bad: [string, RegExp][] = [
    ['{not json', /failed to parse configuration information/],
    ['[1,2]', /not an object/],
    [JSON.stringify({ version: 3 }), /version must be 2/],
    [JSON.stringify({ version: 2, rafs: { mode: 'fast' } }), /rafs.mode must be "direct" or "cached"/],
    [JSON.stringify({ version: 2, backend: { type: 'localfs', localfs: {} } }), /localfs needs "dir" or "blob_file"/],
    [JSON.stringify({ version: 2, backend: { type: 'registry', registry: { host: 'h' } } }), /registry needs "host" and "repo"/],
    [JSON.stringify({ version: 2, backend: { type: 'ftp' } }), /unknown backend type "ftp"/],
    [JSON.stringify({ version: 2, cache: { type: 'blobcache' } }), /needs filecache.work_dir/],
    [JSON.stringify({ version: 2, rafs: { prefetch: { threads: 4 } } }), /rafs.prefetch.enable is required/],
    [JSON.stringify({ version: 2, rafs: { prefetch: { enable: true, threads: 0 } } }), /threads must be 1..1024/],
    [JSON.stringify({ version: 2, rafs: { batch_size: 'big' } }), /rafs.batch_size: expected a number/],
    [JSON.stringify({ device: { backend: { type: 'localfs', config: { dir: '/x' } } } }), /"mode" is required/],
  ];
  for (const [text, re] of bad) {
    assert.throws(() => parseConfig(text), (e: unknown) => e instanceof ConfigError && re.test((e as Error).message), text);
  }
});

const v1With = (extra: Record<string, unknown>, backend: Record<string, unknown> = { dir: '/blobs' }, cache: Record<string, unknown> = {}, type = 'localfs') =>
  JSON.stringify({
    device: { backend: { type, config: backend }, cache: { type: 'blobcache', config: { work_dir: '/cache' }, ...cache } },
    mode: 'direct',
    ...extra,
  });

test('durations longer than a timer can wait are clamped with a warning; negative ones are refused', () => {
  const warnings: string[] = [];
  const c = parseConfig(v1With({}, { dir: '/blobs', timeout: 3_000_000 }), (m) => warnings.push(m));
  assert.equal(backendOf(c.backend, 'localfs').localfs.timeout, 2147483);
  assert.deepEqual(warnings, ['backend.localfs.timeout: 3000000 s is longer than the longest timer (2147483 s); using 2147483 s']);
  // the limit itself is kept as it is, silently
  const quiet: string[] = [];
  parseConfig(v1With({}, { dir: '/blobs', timeout: 2147483 }), (m) => quiet.push(m));
  assert.deepEqual(quiet, []);
  assert.throws(() => parseConfig(v1With({}, { dir: '/blobs', timeout: -1 })), /backend\.localfs\.timeout: a duration in seconds must be >= 0, got -1/);
  const reg = { host: 'r.example', repo: 'a/b', timeout: 5, connect_timeout: 1e12, proxy: { url: 'http://127.0.0.1:1', check_interval: -5 } };
  assert.throws(() => parseConfig(v1With({}, reg, {}, 'registry')), /proxy\.check_interval: a duration in seconds must be >= 0, got -5/);
  const w2: string[] = [];
  const r = parseConfig(JSON.stringify({ version: 2, backend: { type: 'registry', registry: { ...reg, proxy: { check_pause_elapsed: 9e9 } } } }), (m) => w2.push(m));
  assert.equal(backendOf(r.backend, 'registry').registry.connect_timeout, 2147483);
  assert.equal(backendOf(r.backend, 'registry').registry.proxy.check_pause_elapsed, 2147483);
  assert.equal(w2.length, 2, w2.join('\n'));
  assert.throws(() => parseConfig(v1With({}, { ...reg, timeout: '5' }, {}, 'registry')), /backend\.registry\.timeout: expected a number, got "5"/);
  assert.throws(() => parseConfig(v1With({}, { ...reg, retry_limit: 1.5 }, {}, 'registry')), /retry_limit: expected an integer in 0\.\.1000, got 1\.5/);
});

test('amplify_io and batch sizes are checked as integers in range, named as the document names them', () => {
  assert.throws(() => parseConfig(v1With({ amplify_io: -1 })), /config\.amplify_io: expected an integer in 0\.\.268435456, got -1/);
  assert.throws(() => parseConfig(v1With({ amplify_io: 2 ** 40 })), /config\.amplify_io: expected an integer in 0\.\.268435456/);
  assert.throws(() => parseConfig(JSON.stringify({ version: 2, rafs: { batch_size: -1 } })), /rafs\.batch_size: expected an integer in 0\.\.268435456, got -1/);
  assert.equal(parseConfig(v1With({ amplify_io: 0 })).rafs?.batch_size, 0);
});

test('a known key in the wrong place is named in a warning (and ignored, as the reference ignores it)', () => {
  const warnings: string[] = [];
  const text = JSON.stringify({
    device: { backend: { type: 'localfs', config: { dir: '/b' } }, cache: { type: 'blobcache', config: { work_dir: '/c', validate: true, compressed: true } }, amplify_io: 1 },
    mode: 'direct',
  });
  const c = parseConfig(text, (m) => warnings.push(m));
  assert.equal(c.cache?.validate, false);
  assert.equal(c.cache?.compressed, false);
  assert.deepEqual(warnings, [
    'device.cache.config.validate is ignored: "validate" belongs in device.cache',
    'device.cache.config.compressed is ignored: "compressed" belongs in device.cache',
    'device.amplify_io is ignored: "amplify_io" belongs in the top level',
  ]);
  const w2: string[] = [];
  parseConfig(JSON.stringify({ version: 2, cache: { type: 'blobcache', filecache: { work_dir: '/c', validate: true } } }), (m) => w2.push(m));
  assert.deepEqual(w2, ['cache.filecache.validate is ignored: "validate" belongs in cache']);
  // in the right place: no warning
  const none: string[] = [];
  parseConfig(v1With({}, { dir: '/b' }, { validate: true, compressed: true }), (m) => none.push(m));
  assert.deepEqual(none, []);
});
