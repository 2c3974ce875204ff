// TLS of the network backends (nydusd-runtime.md 2.4 skip_verify and ca_cert_files, 7.1, 7.2 step 3): an https fake
// registry with a self-signed certificate the test makes with openssl is refused by default, accepted with the
// certificate in ca_cert_files or with skip_verify; a CA file that is missing or holds no certificate fails backend
// creation naming the file; with skip_verify an https configuration against a plain-http registry falls back to http.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createBackend } from '../../../src/storage/backend/factory.js';
import { RegistryBackend } from '../../../src/storage/backend/registry/registry.js';
import { removeDir, tempDir } from '../../nydusd/helpers.js';
import { FakeRegistry, registryConfigFor, selfSignedCert } from './fake-registry.js';

const BLOB = crypto.randomBytes(64_000);

describe('registry TLS', () => {
  let dir: string;
  let registry: FakeRegistry;
  let plain: FakeRegistry;
  let certFile: string;
  let id: string;
  before(async () => {
    dir = tempDir('tls');
    const pair = await selfSignedCert(dir);
    certFile = pair.certFile;
    registry = await FakeRegistry.start({ tls: pair, auth: { kind: 'basic', user: 'u', password: 'p' } });
    plain = await FakeRegistry.start();
    id = registry.addBlob(BLOB);
    plain.addBlob(BLOB);
  });
  after(async () => {
    await registry.close();
    await plain.close();
    removeDir(dir);
  });

  const auth = Buffer.from('u:p').toString('base64');

  it('refuses a self-signed certificate by default, before any credential is sent', async () => {
    const b = new RegistryBackend(registryConfigFor(registry, { auth }));
    try {
      await assert.rejects(b.read(id, 0, 10), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'ND_ERR_TLS');
        assert.match(e.message, /TLS with https:\/\/127\.0\.0\.1:\d+ failed: .*self[- ]signed certificate/i);
        return true;
      });
      assert.equal(registry.requests.length, 0, 'nothing reached the server');
    } finally {
      await b.close();
    }
  });

  it('accepts it with ca_cert_files', async () => {
    const b = new RegistryBackend(registryConfigFor(registry, { auth, ca_cert_files: [certFile] }));
    try {
      assert.ok((await b.read(id, 1000, 20_000)).equals(BLOB.subarray(1000, 21_000)));
    } finally {
      await b.close();
    }
  });

  it('accepts it with skip_verify', async () => {
    const b = new RegistryBackend(registryConfigFor(registry, { auth, skip_verify: true }));
    try {
      assert.ok((await b.read(id, 5, 5)).equals(BLOB.subarray(5, 10)));
    } finally {
      await b.close();
    }
  });

  it('fails creation on a missing or invalid CA file, naming it', async () => {
    const missing = path.join(dir, 'missing.pem');
    const junk = path.join(dir, 'junk.pem');
    fs.writeFileSync(junk, 'not a certificate\n');
    const broken = path.join(dir, 'broken.pem');
    fs.writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    const cfg = (f: string) => ({ type: 'registry' as const, registry: registryConfigFor(registry, { ca_cert_files: [certFile, f] }) });
    await assert.rejects(createBackend(cfg(missing)), new RegExp(`ca_cert_files: cannot read ${missing}: ENOENT`));
    await assert.rejects(createBackend(cfg(junk)), new RegExp(`ca_cert_files: ${junk} holds no PEM certificate`));
    await assert.rejects(createBackend(cfg(broken)), new RegExp(`ca_cert_files: certificate 1 of ${broken} is invalid`));
  });

  it('connect_timeout bounds a TLS handshake that never completes', { timeout: 30_000 }, async () => {
    // a server that accepts TCP connections and then says nothing
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((s) => sockets.add(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const host = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    const b = new RegistryBackend(registryConfigFor({ host, url: `https://${host}` }, { connect_timeout: 1, timeout: 0 }));
    try {
      await assert.rejects(b.read(id, 0, 10), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'ND_ERR_CONNECT');
        assert.match(e.message, new RegExp(`connecting to https://${host} timed out`));
        return true;
      });
    } finally {
      await b.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  it('skip_verify: https against a plain-http registry falls back to http for good', async () => {
    const lines: string[] = [];
    const b = new RegistryBackend(registryConfigFor(plain, { scheme: 'https', skip_verify: true }), { log: (_l, m) => lines.push(m) });
    try {
      assert.ok((await b.read(id, 0, 100)).equals(BLOB.subarray(0, 100)));
      assert.ok((await b.read(id, 100, 100)).equals(BLOB.subarray(100, 200)));
      assert.equal(b.client.origin, plain.url);
      assert.equal(lines.filter((l) => /https failed .*; using http from now on/.test(l)).length, 1);
    } finally {
      await b.close();
    }
    // without skip_verify there is no fallback
    const strict = new RegistryBackend(registryConfigFor(plain, { scheme: 'https' }));
    try {
      await assert.rejects(strict.read(id, 0, 10), /ND_ERR_TLS|TLS with https/);
    } finally {
      await strict.close();
    }
  });
});
