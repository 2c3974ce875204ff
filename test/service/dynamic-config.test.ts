// The dynamic configuration store (src/service/dynamic-config.ts, spec nydusd-runtime.md 2.6): seeding from an
// instance's configuration, all-or-nothing updates (issue 9), secrets redacted in what it reports, subscribers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig, localfsDirConfig } from '../../src/config/parse.js';
import { DynamicConfigError, DynamicConfigStore, REDACTED, seedValues } from '../../src/service/dynamic-config.js';

// a v1 registry configuration as nydus-snapshotter writes it (snapshotter-contract.md 2.2, example A)
const registryV1 = (auth: string, proxyUrl: string) => JSON.stringify({
  device: {
    id: '/42',
    backend: { type: 'registry', config: { host: 'ghcr.io', repo: 'x/y', scheme: 'https', auth, proxy: { url: proxyUrl } } },
    cache: { type: 'blobcache', config: { work_dir: '/var/cache/nydus' } },
  },
  mode: 'direct',
});

test('an instance seeds registry_auth and proxy_url from its registry backend; a localfs one seeds nothing', () => {
  assert.deepEqual(seedValues(parseConfig(registryV1('dXNlcjpwYXNz', 'http://127.0.0.1:4001'))), { registry_auth: 'dXNlcjpwYXNz', proxy_url: 'http://127.0.0.1:4001' });
  // proxy keys only when non-empty (2.6), no auth no key
  assert.deepEqual(seedValues(parseConfig(registryV1('', ''))), {});
  assert.deepEqual(seedValues(localfsDirConfig('/blobs')), {});
  const v2 = parseConfig(JSON.stringify({
    version: 2, backend: { type: 'registry', registry: { host: 'h', repo: 'r', proxy: { url: 'http://p:65001', dragonfly_scheduler_endpoint: 'http://s:8002' } } },
    cache: { type: 'blobcache', filecache: { work_dir: '/c' } }, rafs: { mode: 'direct' },
  }));
  assert.deepEqual(seedValues(v2), { proxy_url: 'http://p:65001', dragonfly_scheduler_endpoint: 'http://s:8002' });
});

test('the store: per-id keys, secrets redacted in entries, once per configuration seeding', () => {
  const s = new DynamicConfigStore();
  assert.deepEqual(s.entries(), {});
  const cfg = parseConfig(registryV1('dXNlcjpwYXNz', 'http://127.0.0.1:4001'));
  s.seed('/42', cfg);
  assert.equal(s.get('/42', 'registry_auth'), 'dXNlcjpwYXNz');
  assert.equal(s.get('/', 'registry_auth'), undefined);
  assert.deepEqual(s.entriesOf('/42'), { registry_auth: REDACTED, proxy_url: 'http://127.0.0.1:4001' });
  assert.deepEqual(s.entriesOf('/42', { secrets: true }), { registry_auth: 'dXNlcjpwYXNz', proxy_url: 'http://127.0.0.1:4001' });
  assert.deepEqual(s.entriesOf('/4'), {});
  assert.deepEqual(s.entries(), { '/42:registry_auth': REDACTED, '/42:proxy_url': 'http://127.0.0.1:4001' });
  // an update wins over the seed until the instance is seeded from another configuration (a remount)
  s.update('/42', { registry_auth: 'bmV3Om5ldw==' });
  s.seed('/42', cfg);
  assert.equal(s.get('/42', 'registry_auth'), 'bmV3Om5ldw==');
  s.seed('/42', parseConfig(registryV1('b3RoZXI6b3RoZXI=', '')));
  assert.equal(s.get('/42', 'registry_auth'), 'b3RoZXI6b3RoZXI=');
  // an empty credential (drop it, 2.6) is no secret to hide
  s.update('/42', { registry_auth: '' });
  assert.equal(s.entriesOf('/42').registry_auth, '');
});

test('an update is checked whole before any key is applied, and names keys, never values', () => {
  const s = new DynamicConfigStore();
  s.update('/', { proxy_url: 'http://a:1' });
  const refused = (values: Record<string, unknown>, unknownKeys: string[], nonStringKeys: string[], message: string) =>
    assert.throws(() => s.update('/', values), (e: unknown) =>
      e instanceof DynamicConfigError && e.message === message && assert.deepEqual([e.unknownKeys, e.nonStringKeys], [unknownKeys, nonStringKeys]) === undefined);
  refused({ proxy_url: 'http://b:2', bogus: 'x' }, ['bogus'], [],
    'unknown key "bogus" (known: registry_auth, proxy_url, dragonfly_scheduler_endpoint); nothing was applied');
  refused({ registry_auth: 'c2VjcmV0', proxy_url: 5, a: '1', b: '2' }, ['a', 'b'], ['proxy_url'],
    'unknown keys "a", "b" (known: registry_auth, proxy_url, dragonfly_scheduler_endpoint); the value of "proxy_url" must be a string; nothing was applied');
  refused({ registry_auth: null }, [], ['registry_auth'], 'the value of "registry_auth" must be a string; nothing was applied');
  assert.deepEqual(s.entriesOf('/', { secrets: true }), { proxy_url: 'http://a:1' });
  assert.deepEqual(s.update('/', { proxy_url: 'http://b:2', dragonfly_scheduler_endpoint: 'http://s:8002' }), ['proxy_url', 'dragonfly_scheduler_endpoint']);
  assert.deepEqual(s.entriesOf('/'), { proxy_url: 'http://b:2', dragonfly_scheduler_endpoint: 'http://s:8002' });
});

test('subscribers hear each key of an applied update, after all are set, and nothing of a refused one', () => {
  const s = new DynamicConfigStore();
  const heard: string[] = [];
  const stop = s.subscribe((id, key, value) => heard.push(`${id} ${key}=${value} (${s.get(id, 'proxy_url')})`));
  s.update('/1', { registry_auth: 'dXNlcjpwYXNz', proxy_url: 'http://p:1' });
  assert.throws(() => s.update('/1', { registry_auth: 'bmV3', nope: '' }), DynamicConfigError);
  s.seed('/2', parseConfig(registryV1('dXNlcjpwYXNz', '')));
  assert.deepEqual(heard, ['/1 registry_auth=dXNlcjpwYXNz (http://p:1)', '/1 proxy_url=http://p:1 (http://p:1)']);
  stop();
  s.update('/1', { proxy_url: 'http://p:2' });
  assert.equal(heard.length, 2);
});
