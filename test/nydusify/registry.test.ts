// nydusify against Debian's real docker-registry on loopback (issue 11's first acceptance bullet): the umoci-built
// source image is pushed with skopeo, converted registry -> registry, its pushed manifest checked field by field,
// `nydusify check` passes, `nydusify mount` (nydusd with the registry backend) serves a tree identical to the
// source's, and check fails once a blob is corrupted in the registry's storage. Also: an index resolved by
// --platform, and htpasswd Basic auth with credentials from a docker config.json.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { mountAt } from '../../src/fuse/mountinfo.js';
import { removeDir, requireEnv, run, tempDir } from '../nydusd/helpers.js';
import { assertMountHasSource, buildSourceImage, nydusify, nydusifyOk, NydusifyMount, requireTools, sha256, tamper, type SourceImage } from './helpers.js';
import { Registry } from '../helpers/registry.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

async function getManifest(host: string, repo: string, ref: string): Promise<{ digest: string; json: any; contentType: string }> {
  const r = await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, { headers: { accept: `${OCI_MANIFEST}, ${OCI_INDEX}` } });
  assert.equal(r.status, 200, `GET manifest ${repo}:${ref}`);
  const body = Buffer.from(await r.arrayBuffer());
  return { digest: sha256(body), json: JSON.parse(body.toString('utf8')), contentType: r.headers.get('content-type') ?? '' };
}

async function getBlob(host: string, repo: string, digest: string): Promise<Buffer> {
  const r = await fetch(`http://${host}/v2/${repo}/blobs/${digest}`);
  assert.equal(r.status, 200, `GET blob ${digest}`);
  return Buffer.from(await r.arrayBuffer());
}

describe('nydusify with a registry', () => {
  let dir: string;
  let src: SourceImage;
  let reg: Registry;
  let authReg: Registry | undefined;
  const mounts: NydusifyMount[] = [];

  before(async () => {
    requireTools();
    requireEnv(['docker-registry', 'htpasswd']);
    dir = tempDir('nydusify-registry');
    src = buildSourceImage(dir);
    reg = await Registry.start({ kind: 'anonymous' }, path.join(dir, 'registry'));
    run('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${src.layout}:v1`, `docker://${reg.host}/src:v1`]);
  });

  after(async () => {
    for (const m of mounts) await m.cleanup();
    await reg?.stop();
    await authReg?.stop();
    if (dir) removeDir(dir);
  });

  test('convert pulls from the registry and pushes the Nydus image with the media types and annotations the snapshotter expects', async () => {
    const r = await nydusifyOk([
      'convert', '--source', `${reg.host}/src:v1`, '--target', `${reg.host}/nydus:v1`, '--source-insecure', '--target-insecure',
    ]);
    const m = await getManifest(reg.host, 'nydus', 'v1');
    assert.equal(r.stdout.trim(), m.digest);
    assert.equal(m.contentType, OCI_MANIFEST);
    assert.equal(m.json.layers.length, 3);
    for (const l of m.json.layers.slice(0, 2)) {
      assert.equal(l.mediaType, 'application/vnd.oci.image.layer.nydus.blob.v1');
      assert.deepEqual(l.annotations, { 'containerd.io/uncompressed': l.digest, 'containerd.io/snapshot/nydus-blob': 'true' });
      const blob = await getBlob(reg.host, 'nydus', l.digest);
      assert.equal(sha256(blob), l.digest);
      assert.equal(blob.length, l.size);
    }
    const boot = m.json.layers[2];
    assert.equal(boot.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    assert.equal(boot.annotations['containerd.io/snapshot/nydus-bootstrap'], 'true');
    assert.equal(boot.annotations['containerd.io/snapshot/nydus-fs-version'], '6');
    const config = JSON.parse((await getBlob(reg.host, 'nydus', m.json.config.digest)).toString('utf8'));
    assert.deepEqual(config.rootfs.diff_ids, [m.json.layers[0].digest, m.json.layers[1].digest, boot.annotations['containerd.io/uncompressed']]);
  });

  test('check passes against the source in the registry', async () => {
    const ok = await nydusifyOk([
      'check', '--source', `${reg.host}/src:v1`, '--target', `${reg.host}/nydus:v1`, '--source-insecure', '--target-insecure',
    ]);
    assert.match(ok.stdout, /check passed: 2 blobs verified, \d{3,} paths identical to the source/);
  });

  test('mount reads the image from the registry: the source tree, attributes and md5s; SIGTERM unmounts', async () => {
    const mnt = path.join(dir, 'mnt');
    const m = new NydusifyMount(['--target', `${reg.host}/nydus:v1`, '--target-insecure'], mnt);
    mounts.push(m);
    await m.waitMounted();
    // cold: reading one small file fetches at most one amplified read (amplify_io, 1 MiB by default), not the image
    const layers = (await getManifest(reg.host, 'nydus', 'v1')).json.layers as Array<{ size: number }>;
    const blobBytes = layers.slice(0, -1).reduce((a, l) => a + l.size, 0);
    // before any read, at most the blobs' chunk tables may have come (fetched in the background at mount, as the
    // reference fetches blob metas, nydusd-runtime.md 1.9): never the image's data
    const beforeRead = await m.backendBytes();
    assert.ok(beforeRead < blobBytes / 4, `${beforeRead} of the blobs' ${blobBytes} bytes fetched before a read`);
    assert.equal(readFileSync(path.join(mnt, 'data/hello.txt'), 'utf8'), 'hello nydus\n');
    const cold = await m.backendBytes();
    assert.ok(cold > 0 && cold <= 1 << 20 && cold < blobBytes / 4, `reading 12 bytes fetched ${cold} of the blobs' ${blobBytes} bytes`);
    assertMountHasSource(src.rootfs, mnt);
    assert.equal(await m.stop('SIGTERM'), 0, m.stderr);
    assert.equal(mountAt(mnt), undefined);
  });

  test('an index is resolved by --platform; a platform it lacks is a clear error', async () => {
    const src1 = await getManifest(reg.host, 'src', 'v1');
    const size = Buffer.byteLength(JSON.stringify(src1.json));
    const raw = await fetch(`http://${reg.host}/v2/src/manifests/v1`, { headers: { accept: OCI_MANIFEST } });
    const rawBody = Buffer.from(await raw.arrayBuffer());
    assert.ok(size > 0);
    const index = {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        { mediaType: OCI_MANIFEST, digest: sha256(rawBody), size: rawBody.length, platform: { os: 'linux', architecture: 'arm64' } },
        { mediaType: OCI_MANIFEST, digest: sha256(rawBody), size: rawBody.length, platform: { os: 'linux', architecture: 'amd64' } },
      ],
    };
    const put = await fetch(`http://${reg.host}/v2/src/manifests/multi`, { method: 'PUT', headers: { 'content-type': OCI_INDEX }, body: JSON.stringify(index) });
    assert.equal(put.status, 201);
    await nydusifyOk(['convert', '--source', `${reg.host}/src:multi`, '--target', `${reg.host}/nydus:multi`, '--platform', 'linux/amd64', '--source-insecure', '--target-insecure']);
    const a = await getManifest(reg.host, 'nydus', 'multi');
    const b = await getManifest(reg.host, 'nydus', 'v1');
    assert.deepEqual(a.json.layers, b.json.layers, 'the same source image converts to the same layers');
    const bad = await nydusify(['convert', '--source', `${reg.host}/src:multi`, '--target', `${reg.host}/nydus:x`, '--platform', 'linux/s390x', '--source-insecure', '--target-insecure']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /no manifest for platform linux\/s390x \(the index has: linux\/arm64, linux\/amd64\)/);
  });

  test('Basic auth: credentials from the docker config.json; none is a clear error', async () => {
    const user = { name: 'nydus', password: 's3cret-pass' };
    authReg = await Registry.start({ kind: 'htpasswd', users: { [user.name]: user.password } }, path.join(dir, 'auth-registry'));
    run('skopeo', ['copy', '-q', '--dest-tls-verify=false', '--dest-creds', `${user.name}:${user.password}`, `oci:${src.layout}:v1`, `docker://${authReg.host}/src:v1`]);
    const dockerDir = path.join(dir, 'docker');
    mkdirSync(dockerDir);
    const auth = Buffer.from(`${user.name}:${user.password}`).toString('base64');
    writeFileSync(path.join(dockerDir, 'config.json'), JSON.stringify({ auths: { [authReg.host]: { auth } } }));
    const env = { ...process.env, DOCKER_CONFIG: dockerDir };
    const args = ['--source', `${authReg.host}/src:v1`, '--target', `${authReg.host}/nydus:v1`, '--source-insecure', '--target-insecure'];
    const r = await nydusifyOk(['convert', ...args], env);
    assert.doesNotMatch(r.stderr, new RegExp(`${user.password}|${auth}`), 'credentials never reach the log');
    await nydusifyOk(['check', ...args], env);
    // the mount's nydusd gets the same credential for its registry backend
    const mnt = path.join(dir, 'mnt-auth');
    const m = new NydusifyMount(['--target', `${authReg.host}/nydus:v1`, '--target-insecure'], mnt, env);
    mounts.push(m);
    await m.waitMounted();
    assert.equal(readFileSync(path.join(mnt, 'data/changed.txt'), 'utf8'), 'version 2, longer than the first\n');
    assert.equal(await m.stop('SIGINT'), 0, m.stderr);
    assert.doesNotMatch(m.stderr, new RegExp(`${user.password}|${auth}`), 'credentials never reach the log');
    const denied = await nydusify(['convert', ...args], { ...process.env, DOCKER_CONFIG: path.join(dir, 'no-docker-config') });
    assert.equal(denied.status, 1);
    const last = denied.stderr.trim().split('\n').at(-1)!;
    assert.equal(last, `Error: ${authReg.host}/src: the registry wants Basic authentication, but no credential is configured `
      + `(auth, IMAGE_PULL_AUTH or registry_auth) (nydusify takes credentials from auths."${authReg.host}".auth in ${path.join(dir, 'no-docker-config', 'config.json')})`);
  });

  test('check fails naming the blob corrupted in the registry storage', async () => {
    const m = await getManifest(reg.host, 'nydus', 'v1');
    const victim = m.json.layers[1];
    tamper(reg.blobFile(victim.digest));
    assert.notEqual(sha256(readFileSync(reg.blobFile(victim.digest))), victim.digest);
    const bad = await nydusify(['check', '--source', `${reg.host}/src:v1`, '--target', `${reg.host}/nydus:v1`, '--source-insecure', '--target-insecure']);
    assert.equal(bad.status, 1, bad.stdout);
    assert.match(bad.stderr, new RegExp(`blob ${victim.digest} is corrupt: its ${victim.size} bytes hash to sha256:[0-9a-f]{64}`));
  });
});
