// The Dragonfly harness as a real nydusd sees it: the reference nydusd (nydus-rs 2.2.0, test/helpers/peers.ts)
// mounts a bootstrap sample whose blob lives in Debian's docker-registry, with its registry backend in proxy mode
// (nydusd-runtime.md 7.5: `proxy.url` = a dfdaemon peer's proxy, `ping_url` = its health endpoint, no fallback), and
// the mount lists exactly as the same image on localfs; every blob read reached the registry through the P2P network
// (the peer counted the requests as via Dragonfly). What our nydusd's proxy-mode tests can expect of the harness.
// The registry is reached directly, not through registry.ts's in-process FrontEnd: listing the mount reads it with
// synchronous calls, which would block this process's event loop and so any server in it the daemon depends on.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sample } from '../differential/images.js';
import { describeDifference, differences, listMounted, mountListing } from '../differential/mount-listing.js';
import { startSide } from '../differential/peer-daemons.js';
import { DragonflyCluster } from '../helpers/dragonfly.js';
import { requirePeers } from '../helpers/peers.js';
import { Registry, RegistryClient } from '../helpers/registry.js';

const REPO = 'p2p/reference';
const VIA = 'dragonfly_dfdaemon_proxy_request_via_dragonfly_total';

describe('Dragonfly harness with the reference nydusd in proxy mode', { timeout: 600_000 }, () => {
  let registry: Registry;
  let cluster: DragonflyCluster;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nydus-p2p-ref-'));

  before(async () => {
    requirePeers();
    registry = await Registry.start({ kind: 'anonymous' });
    cluster = await DragonflyCluster.start({ peers: 1, seedPeer: true });
  });

  after(async () => {
    await cluster?.stop();
    await registry?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('mounts an image from the registry through the peer proxy, listing exactly as on localfs', async () => {
    const image = sample('v6-zstd');
    const want = (await listMounted('ref', image.bootstrap, image.blobDir, path.join(dir, 'localfs'))).listing;
    const client = new RegistryClient(registry.url);
    const blobIds = readdirSync(image.blobDir);
    for (const id of blobIds) {
      assert.equal(await client.pushBlob(REPO, readFileSync(path.join(image.blobDir, id))), `sha256:${id}`);
    }
    const peer = cluster.peers[0]!;
    const viaBefore = (await peer.metrics()).get(VIA) ?? 0;

    const side = path.join(dir, 'proxy');
    mkdirSync(side, { recursive: true });
    const config = path.join(side, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        device: {
          backend: {
            type: 'registry',
            config: { scheme: 'http', host: registry.host, repo: REPO, timeout: 30, connect_timeout: 5, retry_limit: 0, proxy: { url: peer.proxyUrl, ping_url: peer.pingUrl, fallback: false, check_interval: 5 } },
          },
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
    } finally {
      await mounted.daemon.stop(10_000);
    }
    const diffs = differences(want, got);
    assert.deepEqual(diffs.map(describeDifference), [], 'the proxied mount lists as the localfs one');
    const via = ((await peer.metrics()).get(VIA) ?? 0) - viaBefore;
    assert.ok(via >= 1, `the reference nydusd's blob reads went through the peer into the P2P network (${via})`);
  });
});
