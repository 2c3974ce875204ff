// The v2 rendering DaemonInfo embeds (nydusd-runtime.md 3.5.1): every key present in the documented order, absent
// sub-objects null, and no secret left (registry auth and token, OSS and S3 keys, the cache encryption key).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/parse.js';
import { renderConfig } from '../../src/config/render.js';

const SECRETS = ['dXNlcjpwYXNzd29yZA==', 'tok-3f9a', 'AKIDOSS', 'oss-secret-77', 'AKIDS3', 's3-secret-88', '00112233445566778899aabbccddeeff'];

function registryV1(): string {
  return JSON.stringify({
    device: {
      id: '/42',
      backend: { type: 'registry', config: { host: 'ghcr.io', repo: 'x/y', auth: SECRETS[0], registry_token: SECRETS[1], proxy: { url: 'http://127.0.0.1:4001', fallback: false } } },
      cache: { type: 'blobcache', config: { work_dir: '/var/cache/nydus', enable_encryption: true, encryption_key: SECRETS[6] } },
    },
    mode: 'direct',
    enable_xattr: true,
    fs_prefetch: { enable: true, threads_count: 4, merging_size: 131072 },
  });
}

test('a registry config renders every key in the documented order, auth and token null, encryption key empty', () => {
  const r = renderConfig(parseConfig(registryV1())) as Record<string, any>;
  assert.deepEqual(Object.keys(r), ['version', 'id', 'backend', 'external_backends', 'cache', 'rafs', 'overlay']);
  assert.equal(r.version, 2);
  assert.equal(r.id, '/42');
  assert.deepEqual(Object.keys(r.backend), ['type', 'localdisk', 'localfs', 'oss', 's3', 'registry', 'http-proxy']);
  assert.equal(r.backend.type, 'registry');
  for (const k of ['localdisk', 'localfs', 'oss', 's3', 'http-proxy']) assert.equal(r.backend[k], null, k);
  assert.deepEqual(Object.keys(r.backend.registry), [
    'scheme', 'host', 'repo', 'auth', 'skip_verify', 'ca_cert_files', 'timeout', 'connect_timeout', 'retry_limit', 'registry_token',
    'blob_url_scheme', 'blob_redirected_host', 'proxy',
  ]);
  assert.equal(r.backend.registry.auth, null);
  assert.equal(r.backend.registry.registry_token, null);
  assert.equal(r.backend.registry.host, 'ghcr.io');
  assert.deepEqual(Object.keys(r.backend.registry.proxy), ['url', 'ping_url', 'fallback', 'check_interval', 'use_http', 'check_pause_elapsed', 'dragonfly_scheduler_endpoint']);
  assert.equal(r.backend.registry.proxy.url, 'http://127.0.0.1:4001');
  assert.equal(r.backend.registry.proxy.fallback, false);
  assert.deepEqual(Object.keys(r.cache), ['type', 'compressed', 'validate', 'prefetch', 'filecache', 'fscache']);
  assert.equal(r.cache.fscache, null);
  assert.deepEqual(Object.keys(r.cache.prefetch), ['enable', 'threads', 'batch_size', 'bandwidth_limit', 'prefetch_all', 'stream_prefetch']);
  assert.deepEqual(r.cache.prefetch, { enable: true, threads: 4, batch_size: 131072, bandwidth_limit: 0, prefetch_all: true, stream_prefetch: false });
  assert.deepEqual(Object.keys(r.cache.filecache), ['work_dir', 'disable_indexed_map', 'enable_encryption', 'enable_convergent_encryption', 'encryption_key']);
  assert.equal(r.cache.filecache.enable_encryption, true);
  assert.equal(r.cache.filecache.encryption_key, '');
  assert.deepEqual(Object.keys(r.rafs), ['mode', 'batch_size', 'validate', 'enable_xattr', 'iostats_files', 'access_pattern', 'latest_read_files', 'prefetch']);
  assert.equal(r.rafs.enable_xattr, true);
  assert.equal(r.overlay, null);
  const text = JSON.stringify(r);
  for (const s of SECRETS) assert.ok(!text.includes(s), `secret ${s} in ${text}`);
});

test('OSS and S3 keys are scrubbed to empty strings; external backend configs are not reported', () => {
  const oss = renderConfig(parseConfig(JSON.stringify({
    version: 2,
    backend: { type: 'oss', oss: { endpoint: 'oss.example', bucket_name: 'b', access_key_id: SECRETS[2], access_key_secret: SECRETS[3] } },
    external_backends: [{ type: 'registry', patch: { a: 'b' }, config: { auth: SECRETS[0] } }],
  }))) as Record<string, any>;
  assert.equal(oss.backend.oss.access_key_id, '');
  assert.equal(oss.backend.oss.access_key_secret, '');
  assert.equal(oss.backend.oss.bucket_name, 'b');
  assert.deepEqual(oss.external_backends, [{ patch: { a: 'b' }, type: 'registry', config: {} }]);
  assert.equal(oss.cache, null);
  assert.equal(oss.rafs, null);
  const s3 = renderConfig(parseConfig(JSON.stringify({
    version: 2,
    backend: { type: 's3', s3: { region: 'r', bucket_name: 'b', access_key_id: SECRETS[4], access_key_secret: SECRETS[5] } },
  }))) as Record<string, any>;
  assert.equal(s3.backend.s3.region, 'r');
  assert.equal(s3.backend.s3.access_key_id, '');
  assert.equal(s3.backend.s3.access_key_secret, '');
  for (const s of SECRETS) assert.ok(!JSON.stringify([oss, s3]).includes(s), s);
});
