// Preheating a Nydus image in a registry through Dragonfly (issue 11 scope 5; spec p2p-seeds.md 1 and 2): the image's
// manifest is resolved (for the platform), and what nydusd will read from it is warmed on the P2P network before
// containers start: every Nydus blob layer (anchors.md 5.2) and the bootstrap layer, one `file` job per blob with the
// blob's Distribution URL (`<registry>/v2/<repo>/blobs/sha256:...`) and, when the registry wants it, the Authorization
// the peers must send. Or one `image` job for the manifest URL, which the manager resolves itself (newer managers;
// 2.0.x ones read Docker schema 2 manifests only, and Nydus images are OCI).
import { ANNOTATION_NYDUS_BOOTSTRAP, NYDUS_BLOB } from './media-types.js';
import { platformName, type Descriptor, type Platform } from './image-json.js';
import type { DragonflyManager, PreheatRequest, PreheatScope } from './dragonfly-preheat.js';
import type { OpenedImage } from './open-image.js';
import { pullAuthorization } from './pull-authorization.js';
import { runPreheat, type PreheatItem, type PreheatResult, type PreheatWaitOptions } from './preheat-jobs.js';
import { RegistryStore } from './registry-store.js';
import { resolveImage } from './resolve.js';

export interface PreheatImageOptions extends PreheatWaitOptions {
  /** `file`: one job per blob; `image`: one job for the manifest */
  type: 'file' | 'image';
  scope?: PreheatScope;
  clusterIds?: number[];
  platform: Platform;
  /** https without certificate verification (the reference's --target-insecure) */
  insecure: boolean;
}

/** The layers to warm: Nydus blobs and the bootstrap layer, each digest once. */
export function preheatLayers(layers: Descriptor[]): Descriptor[] {
  const out = new Map<string, Descriptor>();
  for (const l of layers) {
    if (l.mediaType === NYDUS_BLOB || l.annotations?.[ANNOTATION_NYDUS_BOOTSTRAP] === 'true') out.set(l.digest, l);
  }
  return [...out.values()];
}

export async function preheatImage(target: OpenedImage, manager: DragonflyManager, o: PreheatImageOptions): Promise<PreheatResult[]> {
  const { reference, image } = target;
  if (reference.kind !== 'registry' || !(image.store instanceof RegistryStore)) {
    throw new Error(`cannot preheat ${reference.text}: Dragonfly peers fetch from a registry, and this is an OCI layout`);
  }
  const resolved = await resolveImage(image, o.platform);
  const layers = preheatLayers(resolved.manifest.layers);
  if (layers.length === 0) {
    throw new Error(`${reference.text} is not a Nydus image: no layer of media type ${NYDUS_BLOB} and no bootstrap layer (${ANNOTATION_NYDUS_BOOTSTRAP})`);
  }
  // the origin the registry answered on (with --target-insecure, https may have fallen back to http)
  const origin = image.store.client.origin;
  const base = `${origin}/v2/${reference.repository}`;
  const common: Pick<PreheatRequest, 'scope' | 'clusterIds'> = { scope: o.scope, clusterIds: o.clusterIds };
  let items: PreheatItem[];
  if (o.type === 'image') {
    const request: PreheatRequest = { ...common, type: 'image', url: `${base}/manifests/${image.ref}`, platform: platformName(o.platform) };
    if (target.credential) {
      const plain = Buffer.from(target.credential, 'base64').toString('utf8');
      const colon = plain.indexOf(':');
      request.username = plain.slice(0, colon);
      request.password = plain.slice(colon + 1);
    }
    items = [{ label: `image ${reference.text}`, request }];
  } else {
    const headers = await pullAuthorization({ origin, repository: reference.repository, digest: layers[0]!.digest, credential: target.credential, insecure: o.insecure });
    items = layers.map((l) => ({
      label: `${l.annotations?.[ANNOTATION_NYDUS_BOOTSTRAP] === 'true' ? 'bootstrap' : 'blob'} ${l.digest}`,
      request: { ...common, type: 'file' as const, url: `${base}/blobs/${l.digest}`, headers },
    }));
  }
  return runPreheat(manager, items, o);
}
