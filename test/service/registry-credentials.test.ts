// Live credential rotation wiring (nydusd-runtime.md 2.6, issue 11): an instance built with a backend id follows
// `registry_auth` changes of that id in the dynamic configuration store (what PUT /api/v1/config changes), not of
// other ids; its seed comes from the configuration at creation; closing the instance ends the subscription.
// Against the fake registry with Basic auth, through the instance's own backend stack.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { parseConfig } from '../../src/config/parse.js';
import { createRafsInstance } from '../../src/service/rafs-instance.js';
import { DynamicConfigStore } from '../../src/service/dynamic-config.js';
import { projectRoot } from '../helpers/paths.js';
import { removeDir, tempDir } from '../nydusd/helpers.js';
import { FakeRegistry } from '../storage/backend/fake-registry.js';

const SAMPLE = path.join(projectRoot, 'bootstrap-samples', 'v5-zstd');
const b64 = (s: string) => Buffer.from(s).toString('base64');

const work = tempDir('rotation');
after(() => removeDir(work));

test('registry_auth updates of the instance\'s id reach its backend; other ids do not; close unsubscribes', async () => {
  const registry = await FakeRegistry.start({ auth: { kind: 'basic', user: 'u', password: 'pw1' } });
  try {
    const [blobName] = readdirSync(path.join(SAMPLE, 'blobs'));
    const blob = readFileSync(path.join(SAMPLE, 'blobs', blobName!));
    const id = registry.addBlob(blob);
    assert.equal(id, blobName, 'the sample blob is named by its sha256');
    const config = parseConfig(JSON.stringify({
      device: {
        backend: { type: 'registry', config: { scheme: 'http', host: registry.host, repo: registry.repo, auth: b64('u:pw1'), timeout: 2 } },
        cache: { type: 'blobcache', config: { work_dir: path.join(work, 'cache') } },
      },
      mode: 'direct',
    }));
    const store = new DynamicConfigStore();
    let subscribed = 0;
    const subscribe = store.subscribe.bind(store);
    store.subscribe = (fn) => {
      subscribed++;
      const stop = subscribe(fn);
      return () => {
        subscribed--;
        stop();
      };
    };
    const instance = await createRafsInstance(path.join(SAMPLE, 'bootstrap'), config, Date.now(), undefined, undefined, { backendId: '/img', store });
    assert.equal(subscribed, 1);
    assert.equal(store.get('/img', 'registry_auth'), b64('u:pw1'), 'seeded at creation');
    const backend = instance.device.backend;
    assert.ok((await backend.read(id, 0, 100)).equals(blob.subarray(0, 100)));

    // the password changes at the registry; the old credential no longer works
    registry.auth = { kind: 'basic', user: 'u', password: 'pw2' };
    await assert.rejects(backend.read(id, 0, 100), /the registry answered 401/);
    // an update for another id changes nothing here
    store.update('/other', { registry_auth: b64('u:pw2') });
    await assert.rejects(backend.read(id, 0, 100), /the registry answered 401/);
    // the instance's own id: used from the next request on
    store.update('/img', { registry_auth: b64('u:pw2') });
    assert.ok((await backend.read(id, 100, 100)).equals(blob.subarray(100, 200)));
    // '' drops the credential
    store.update('/img', { registry_auth: '' });
    await assert.rejects(backend.read(id, 0, 10), /no credential is configured/);

    await instance.device.close();
    assert.equal(subscribed, 0, 'closing the instance ends its subscription');
  } finally {
    await registry.close();
  }
});
