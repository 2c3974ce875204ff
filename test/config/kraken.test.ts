// The `kraken` backend type, our extension (issue 11 scope 4): parsed from v2 JSON, TOML and v1 documents with its
// defaults, validated with one clear line per mistake, and rendered (DaemonInfo) with its keys, the reference-typed
// documents unchanged.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, type BackendConfig } from '../../src/config/model.js';
import { parseConfig } from '../../src/config/parse.js';
import { renderConfig } from '../../src/config/render.js';

function krakenOf(b: BackendConfig | undefined) {
  assert.equal(b?.type, 'kraken');
  return (b as Extract<BackendConfig, { type: 'kraken' }>).kraken;
}

const v2 = (kraken: unknown) => JSON.stringify({ version: 2, backend: { type: 'kraken', kraken } });

test('kraken: v2 JSON with defaults, every key read', () => {
  assert.deepEqual(krakenOf(parseConfig(v2({ agent: 'http://127.0.0.1:16002', namespace: 'library/debian' })).backend), {
    agent: 'http://127.0.0.1:16002', namespace: 'library/debian', timeout: 30, connect_timeout: 5, check_interval: 5, spool_dir: '', skip_verify: false, ca_cert_files: [],
  });
  const k = krakenOf(parseConfig(v2({
    agent: 'https://agent.local:16002/', namespace: ' ns ', timeout: 0, connect_timeout: 1.5, check_interval: 0, spool_dir: '/var/spool', skip_verify: true, ca_cert_files: ['/ca.pem'],
  })).backend);
  assert.deepEqual(k, { agent: 'https://agent.local:16002', namespace: 'ns', timeout: 0, connect_timeout: 1.5, check_interval: 0, spool_dir: '/var/spool', skip_verify: true, ca_cert_files: ['/ca.pem'] });
});

test('kraken: TOML v2 and the v1 shape (device.backend.config) parse the same', () => {
  const toml = parseConfig('version = 2\n[backend]\ntype = "kraken"\n[backend.kraken]\nagent = "http://127.0.0.1:16002"\nnamespace = "repo/x"\ncheck_interval = 2\n');
  const v1 = parseConfig(JSON.stringify({
    device: { backend: { type: 'kraken', config: { agent: 'http://127.0.0.1:16002', namespace: 'repo/x', check_interval: 2 } }, cache: { type: 'blobcache', config: { work_dir: '/tmp/c' } } },
    mode: 'direct',
  }));
  assert.deepEqual(krakenOf(toml.backend), krakenOf(v1.backend));
  assert.equal(krakenOf(v1.backend).check_interval, 2);
});

test('kraken: each mistake is one clear error', () => {
  const cases: [unknown, RegExp][] = [
    [{ namespace: 'x' }, /backend\.kraken: kraken needs "agent" \(http:\/\/host:port of the agent server\) and "namespace"/],
    [{ agent: 'http://h:1' }, /kraken needs "agent" .* and "namespace"/],
    [{ agent: 'not a url', namespace: 'x' }, /backend\.kraken\.agent: "not a url" is not a URL \(expected http:\/\/host:port\)/],
    [{ agent: 'ftp://h:1', namespace: 'x' }, /backend\.kraken\.agent: expected an http or https URL, got ftp:/],
    [{ agent: 'http://h:1/namespace/x', namespace: 'x' }, /backend\.kraken\.agent: expected only scheme, host and port/],
    [{ agent: 'http://u:p@h:1', namespace: 'x' }, /expected only scheme, host and port/],
    [{ agent: 'http://h:1', namespace: 'x', timeout: -1 }, /backend\.kraken\.timeout: a duration in seconds must be >= 0, got -1/],
    [{ agent: 'http://h:1', namespace: 'x', check_interval: '5' }, /backend\.kraken\.check_interval: expected a number, got "5"/],
    [{ agent: 'http://h:1', namespace: 'x', ca_cert_files: '/ca.pem' }, /backend\.kraken\.ca_cert_files: expected an array of strings/],
    [{ agent: 5, namespace: 'x' }, /backend\.kraken\.agent: expected a string, got 5/],
  ];
  for (const [cfg, re] of cases) {
    assert.throws(() => parseConfig(v2(cfg)), (err: unknown) => err instanceof ConfigError && re.test(err.message) && !err.message.includes('\n'), JSON.stringify(cfg));
  }
});

test('kraken: rendered with its keys; reference-typed documents keep their keys', () => {
  const r = renderConfig(parseConfig(v2({ agent: 'http://127.0.0.1:16002', namespace: 'ns' }))) as { backend: Record<string, unknown> };
  assert.equal(r.backend.type, 'kraken');
  assert.deepEqual(r.backend.kraken, {
    agent: 'http://127.0.0.1:16002', namespace: 'ns', timeout: 30, connect_timeout: 5, check_interval: 5, spool_dir: '', skip_verify: false, ca_cert_files: [],
  });
  const reg = renderConfig(parseConfig(JSON.stringify({ version: 2, backend: { type: 'registry', registry: { host: 'h', repo: 'r' } } }))) as { backend: Record<string, unknown> };
  assert.ok(!('kraken' in reg.backend));
});
