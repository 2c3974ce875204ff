// The Authorization a Dragonfly peer needs to pull a repository's blobs (spec p2p-seeds.md 1: a preheat's `headers`
// are sent with the peers' requests). One unauthenticated HEAD of a blob says whether the registry wants any; on a 401
// its challenge is answered the way the registry backend answers it (src/storage/backend/registry/auth.ts: Basic with
// the credential, or a Bearer token for the repository's pull scope from the token service), and the answer is tried
// once more so that a wrong credential fails here, with a clear line, not later on a peer.
import { HttpClient } from '../storage/backend/http/client.js';
import { RegistryAuth } from '../storage/backend/registry/auth.js';
import { parseChallenge } from '../storage/backend/registry/challenge.js';
import { TokenFetcher } from '../storage/backend/registry/token.js';

export interface PullTarget {
  /** `<scheme>://<host>` the registry answers on */
  origin: string;
  repository: string;
  /** a blob of the repository to probe with */
  digest: string;
  /** base64 user:password (docker-config.ts), if any */
  credential?: string;
  /** https without certificate verification */
  insecure: boolean;
}

/** `{ Authorization }` for the peers' blob GETs, or `{}` when the registry serves them anonymously. */
export async function pullAuthorization(t: PullTarget): Promise<Record<string, string>> {
  const http = new HttpClient({ timeout: 30, connectTimeout: 10, skipVerify: t.insecure, caCertFiles: [] });
  const url = new URL(`/v2/${t.repository}/blobs/${t.digest}`, t.origin);
  const where = `${url.host}/${t.repository}`;
  try {
    const probe = await http.request({ method: 'HEAD', url });
    await probe.discard();
    if (probe.status !== 401) return {};
    const auth = new RegistryAuth(new TokenFetcher(http), { credential: t.credential });
    try {
      const { header } = await auth.authorize(parseChallenge(probe.header('www-authenticate')));
      const check = await http.request({ method: 'HEAD', url, headers: { authorization: header } });
      await check.discard();
      if (check.status === 401 || check.status === 403) {
        throw new Error(`the registry refuses the credentials for the Dragonfly peers (HEAD blob ${t.digest} answered ${check.status})`);
      }
      return { Authorization: header };
    } finally {
      auth.close();
    }
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  } finally {
    await http.close();
  }
}
