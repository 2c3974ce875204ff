// Redirects of blob GETs (nydusd-runtime.md 7.2 steps 2 and 5): registries answer with a 3xx to object storage. We
// follow it ourselves, after forcing `blob_url_scheme` and `blob_redirected_host` onto the Location when configured,
// and remember the (rewritten) URL per blob, so later ranges go straight to the object store. A cached URL answered
// with 401 or 403 has expired (signed URLs do): it is dropped and the registry asked again. A redirect target never
// receives the registry's Authorization.
import { NetworkError } from '../errors.js';

export interface RedirectRewrite {
  /** forced scheme, e.g. 'http' ('' = keep) */
  scheme: string;
  /** forced host[:port] ('' = keep) */
  host: string;
}

/** The URL a 3xx's Location points at (relative to `base`), rewritten as configured. */
export function redirectTarget(location: string | undefined, base: URL, rewrite: RedirectRewrite): URL {
  if (!location) throw new NetworkError(`${base.protocol}//${base.host} answered a redirect without Location`, 'ND_ERR_REDIRECT');
  let url: URL;
  try {
    url = new URL(location, base);
  } catch {
    throw new NetworkError(`${base.protocol}//${base.host} redirected to an invalid Location`, 'ND_ERR_REDIRECT');
  }
  if (rewrite.scheme) url.protocol = `${rewrite.scheme.replace(/:$/, '')}:`;
  if (rewrite.host) url.host = rewrite.host;
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new NetworkError(`${base.protocol}//${base.host} redirected to a ${url.protocol} URL`, 'ND_ERR_REDIRECT');
  }
  return url;
}

/** Where each blob was last redirected to; kept with no expiry (7.2 step 5) until a 401/403 drops it. */
export class RedirectCache {
  private readonly urls = new Map<string, URL>();
  /** redirects resolved (3xx answers followed), for tests and diagnostics */
  resolved = 0;

  get(blobId: string): URL | undefined {
    return this.urls.get(blobId);
  }

  set(blobId: string, url: URL): void {
    this.resolved++;
    this.urls.set(blobId, url);
  }

  drop(blobId: string): void {
    this.urls.delete(blobId);
  }
}
