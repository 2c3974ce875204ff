// A reference text -> the store it lives in (an OCI layout directory or a registry repository) and the tag or
// digest within it, with the registry's credentials from the docker config.
import type { Log } from '../log.js';
import { dockerCredential } from './docker-config.js';
import type { ImageRef } from './image-store.js';
import { OciLayoutStore } from './oci-layout-store.js';
import { parseReference, referenceRef, type ParsedReference } from './reference.js';
import { RegistryStore } from './registry-store.js';

export interface OpenedImage {
  image: ImageRef;
  reference: ParsedReference;
  /** base64 user:password used for the registry, if any */
  credential?: string;
  close(): Promise<void>;
}

export function openImage(text: string, o: { insecure: boolean; log?: Log }): OpenedImage {
  const reference = parseReference(text);
  const ref = referenceRef(reference);
  if (reference.kind === 'oci-layout') {
    return { image: { store: new OciLayoutStore(reference.dir), ref }, reference, close: async () => {} };
  }
  const credential = dockerCredential(reference.host);
  const store = new RegistryStore({ host: reference.host, repository: reference.repository, insecure: o.insecure, credential, log: o.log });
  return { image: { store, ref }, reference, credential, close: () => store.close() };
}
