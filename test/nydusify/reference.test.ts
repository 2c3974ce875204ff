// Image references, platforms and docker config credentials: the parsing rules nydusify's options go through.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { dockerCredential } from '../../src/convert/docker-config.js';
import { parsePlatform } from '../../src/convert/image-json.js';
import { parseReference, referenceRef } from '../../src/convert/reference.js';

test('registry references follow docker rules: default host, library/, tag and digest', () => {
  assert.deepEqual(parseReference('ubuntu'), { kind: 'registry', host: 'docker.io', repository: 'library/ubuntu', tag: 'latest', text: 'ubuntu' });
  assert.deepEqual(parseReference('127.0.0.1:5000/a/b:v1'), { kind: 'registry', host: '127.0.0.1:5000', repository: 'a/b', tag: 'v1', text: '127.0.0.1:5000/a/b:v1' });
  assert.deepEqual(parseReference('localhost/x'), { kind: 'registry', host: 'localhost', repository: 'x', tag: 'latest', text: 'localhost/x' });
  const d = `sha256:${'ab'.repeat(32)}`;
  const r = parseReference(`ghcr.io/o/r:t@${d}`);
  assert.equal(referenceRef(r), d, 'the digest wins over the tag');
  assert.equal(referenceRef(parseReference('quay.io/o/r:t')), 't');
  assert.throws(() => parseReference('Bad/Name'), /invalid reference 'Bad\/Name': 'Bad' is not a valid repository name component/);
  assert.throws(() => parseReference('x@sha256:12'), /is not a sha256 digest/);
  assert.throws(() => parseReference('x:bad tag'), /is not a valid tag/);
});

test('oci: references name a layout directory and a tag (latest by default)', () => {
  assert.deepEqual(parseReference('oci:/tmp/img:v2'), { kind: 'oci-layout', dir: '/tmp/img', tag: 'v2', text: 'oci:/tmp/img:v2' });
  assert.deepEqual(parseReference('oci:/tmp/img'), { kind: 'oci-layout', dir: '/tmp/img', tag: 'latest', text: 'oci:/tmp/img' });
  assert.deepEqual(parseReference('oci:rel/dir'), { kind: 'oci-layout', dir: 'rel/dir', tag: 'latest', text: 'oci:rel/dir' });
  assert.throws(() => parseReference('oci:'), /no directory/);
});

test('platforms: os/arch[/variant], or a bare arch meaning linux', () => {
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.deepEqual(parsePlatform('amd64'), { os: 'linux', architecture: 'amd64' });
  assert.throws(() => parsePlatform('linux//x'), /invalid platform 'linux\/\/x'/);
});

test('docker config credentials: auth or username/password, by host or URL key; a broken file is a clear error', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nydusify-dockercfg-'));
  try {
    const env = { DOCKER_CONFIG: dir };
    assert.equal(dockerCredential('r.example', env), undefined, 'no file: no credential');
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
      auths: {
        'r.example:5000': { auth: 'dTpw' },
        'https://other.example/v1/': { username: 'u', password: 'p' },
        'https://index.docker.io/v1/': { auth: 'aHViOng=' },
      },
    }));
    assert.equal(dockerCredential('r.example:5000', env), 'dTpw');
    assert.equal(dockerCredential('other.example', env), Buffer.from('u:p').toString('base64'));
    assert.equal(dockerCredential('docker.io', env), 'aHViOng=');
    assert.equal(dockerCredential('r.example', env), undefined, 'the port is part of the host');
    writeFileSync(path.join(dir, 'config.json'), '{"auths": ');
    assert.throws(() => dockerCredential('r.example', env), new RegExp(`cannot read registry credentials from ${path.join(dir, 'config.json')}: `));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
