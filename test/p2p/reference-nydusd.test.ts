// The P2P harnesses as a real nydusd sees them: the reference nydusd (nydus-rs 2.2.0, test/helpers/peers.ts) mounts a
// bootstrap sample whose blob lives in Debian's docker-registry, and the mount lists exactly as the same image on
// localfs, (1) with its registry backend in proxy mode through a real dfdaemon peer (nydusd-runtime.md 7.5: `proxy.url`
// = the peer's proxy, `ping_url` = its health endpoint, no fallback), every blob read counted by the peer as via
// Dragonfly; (2) with its registry backend pointed, unchanged, at a real Kraken agent's registry port (p2p-seeds.md 3),
// the blob read from the agent's store. What our nydusd's proxy-mode and Kraken tests can expect of the harnesses.
// The registry is reached directly, not through registry.ts's in-process FrontEnd: listing the mount reads it with
// synchronous calls, which would block this process's event loop and so any server in it the daemon depends on.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sample } from '../differential/images.js';
import { describeDifference, differences, listMounted, mountListing } from '../differential/mount-listing.js';
import { startSide, type Image } from '../differential/peer-daemons.js';
import { DragonflyCluster } from '../helpers/dragonfly.js';
import { KrakenCluster } from '../helpers/kraken.js';
import { httpRequest } from '../helpers/p2p-engines.js';
import { requirePeers } from '../helpers/peers.js';
import { Registry, RegistryClient } from '../helpers/registry.js';

const REPO = 'p2p/reference';
const VIA = 'dragonfly_dfdaemon_proxy_request_via_dragonfly_total';

/** Pushes the image's blobs (named by their sha256) to `repo`; returns their digests. */
async function pushBlobs(registry: Registry, image: Image): Promise<string[]> {
  const client = new RegistryClient(registry.url);
  const digests = [];
  for (const id of readdirSync(image.blobDir)) {
    const digest = await client.pushBlob(REPO, readFileSync(path.join(image.blobDir, id)));
    assert.equal(digest, `sha256:${id}`);
    digests.push(digest);
  }
  return digests;
}

/**
 * Mounts `image` with the reference nydusd and a registry backend configured by `backend` (v1 JSON, as
 * nydus-snapshotter writes it), lists the mount and stops the daemon; asserts the listing equals the localfs one.
 */
async function assertListsAsLocalfs(image: Image, dir: string, backend: Record<string, unknown>): Promise<void> {
  const want = (await listMounted('ref', image.bootstrap, image.blobDir, path.join(dir, 'localfs'))).listing;
  const side = path.join(dir, 'registry');
  mkdirSync(side, { recursive: true });
  const config = path.join(side, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      device: {
        backend: { type: 'registry', config: { scheme: 'http', repo: REPO, timeout: 30, connect_timeout: 5, retry_limit: 0, ...backend } },
        cache: { type: 'blobcache', config: { work_dir: path.join(side, 'cache') } },
      },
      mode: 'direct',
      digest_validate: false,
      enable_xattr: true,
    }),
  );
  const mounted = await startSide('ref', side, ['--config', config, '--bootstrap', image.bootstrap]);
  let got;
  try {
    got = mountListing(mounted.mountpoint);
  } catch (err) {
    await mounted.daemon.stop(10_000);
    throw new Error(`listing the mount failed: ${(err as Error).message}\nreference nydusd log:\n${mounted.daemon.stderr.slice(-3000)}`);
  }
  await mounted.daemon.stop(10_000);
  assert.deepEqual(differences(want, got).map(describeDifference), [], 'the registry-backed mount lists as the localfs one');
}

describe('reference nydusd through the P2P harnesses', { timeout: 600_000 }, () => {
  let registry: Registry;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nydus-p2p-ref-'));
  const image = sample('v6-zstd');
  let digests: string[];

  before(async () => {
    requirePeers();
    registry = await Registry.start({ kind: 'anonymous' });
    digests = await pushBlobs(registry, image);
  });

  after(async () => {
    await registry?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('mounts an image from the registry through a dfdaemon proxy, listing exactly as on localfs', async () => {
    const cluster = await DragonflyCluster.start({ peers: 1, seedPeer: true });
    try {
      const peer = cluster.peers[0]!;
      const before = (await peer.metrics()).get(VIA) ?? 0;
      await assertListsAsLocalfs(image, path.join(dir, 'dragonfly'), { host: registry.host, proxy: { url: peer.proxyUrl, ping_url: peer.pingUrl, fallback: false, check_interval: 5 } });
      const via = ((await peer.metrics()).get(VIA) ?? 0) - before;
      assert.ok(via >= 1, `the reference nydusd's blob reads went through the peer into the P2P network (${via})`);
    } finally {
      await cluster.stop();
    }
  });

  it("mounts an image from a Kraken agent's registry port, listing exactly as on localfs", async () => {
    const kraken = await KrakenCluster.start(registry.host);
    try {
      await assertListsAsLocalfs(image, path.join(dir, 'kraken'), { host: `127.0.0.1:${kraken.ports.agentRegistry}` });
      // the agent holds the blob now: its server hands it out whole from its own store
      for (const digest of digests) {
        const res = await httpRequest(kraken.blobUrl(REPO, digest));
        assert.equal(res.status, 200);
        assert.ok(res.body.equals(readFileSync(path.join(image.blobDir, digest.slice('sha256:'.length)))));
      }
    } finally {
      await kraken.stop();
    }
  });
});
