// Fetching a Bearer token from the registry's token service (nydusd-runtime.md 7.3). First an OAuth2-style form POST
// with the reference's client id; when that fails (transport error or a status outside 200-399), a GET with the same
// parameters, as Harbor and the Distribution token spec want, and from then on GET first for that realm's host.
// Token requests always go directly to the realm, never through a proxy; `User-Agent` and NYDUS_HEADER_* still apply
// (the direct transport adds them).
import type { HttpTransport } from '../http/client.js';
import { NetworkError } from '../errors.js';

export const CLIENT_ID = 'nydus-registry-client';
/** the lifetime of a token whose answer does not say (7.3) */
export const DEFAULT_EXPIRES_IN = 600;

export interface BearerParams {
  realm: string;
  service: string;
  scope: string;
}

export interface Token {
  /** the token itself: a secret, never logged */
  token: string;
  /** lifetime in seconds */
  expiresIn: number;
  /** Date.now() when it was received */
  issuedAt: number;
}

export class TokenFetcher {
  /** hosts whose token service refused the POST form: GET first from then on */
  private readonly getFirst = new Set<string>();
  /** token requests made (POST and GET each count), for tests and diagnostics */
  requests = 0;

  constructor(private readonly direct: HttpTransport) {}

  /**
   * A token for `params`, with `credential` (base64 `user:password`) as Basic authorization when there is one.
   * Rejects with ND_ERR_AUTH naming the realm and the status (never the credential or a token).
   */
  async fetch(params: BearerParams, credential: string | undefined, signal?: AbortSignal): Promise<Token> {
    let realm: URL;
    try {
      realm = new URL(params.realm);
    } catch {
      throw new NetworkError(`the registry's token realm ${JSON.stringify(params.realm)} is not a URL`, 'ND_ERR_AUTH');
    }
    const form = new URLSearchParams({ service: params.service, scope: params.scope, client_id: CLIENT_ID });
    const auth: Record<string, string> = credential ? { authorization: `Basic ${credential}` } : {};
    const where = `${realm.protocol}//${realm.host}${realm.pathname}`;
    const viaGet = async (): Promise<Token> => {
      const url = new URL(realm);
      for (const [k, v] of form) url.searchParams.set(k, v);
      return this.answer(await this.send({ method: 'GET', url, headers: auth, signal }), where);
    };
    if (this.getFirst.has(realm.host)) return viaGet();
    let postFailure: unknown;
    try {
      const res = await this.send({
        method: 'POST',
        url: realm,
        headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
        signal,
      });
      if (res.status >= 200 && res.status < 400) return await this.answer(res, where);
      await res.discard();
      postFailure = new NetworkError(`token service ${where} answered the POST with ${res.status}`, 'ND_ERR_AUTH', { status: res.status });
    } catch (err) {
      if (signal?.aborted) throw err;
      postFailure = err;
    }
    try {
      const token = await viaGet();
      this.getFirst.add(realm.host);
      return token;
    } catch (err) {
      if (err instanceof NetworkError && postFailure instanceof NetworkError) {
        throw new NetworkError(`${err.message} (the POST form before: ${postFailure.message})`, err.code, { cause: err, status: err.status });
      }
      throw err;
    }
  }

  private send(req: Parameters<HttpTransport['request']>[0]): ReturnType<HttpTransport['request']> {
    this.requests++;
    return this.direct.request(req);
  }

  private async answer(res: Awaited<ReturnType<HttpTransport['request']>>, where: string): Promise<Token> {
    if (res.status < 200 || res.status >= 400) {
      const text = (await res.text(512).catch(() => '')).replace(/\s+/g, ' ').trim();
      // the body of an error answer names the problem ("authentication required"); it carries no token
      throw new NetworkError(`token service ${where} answered ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`, 'ND_ERR_AUTH', { status: res.status });
    }
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse(await res.text(1 << 20)) as typeof doc;
    } catch {
      throw new NetworkError(`token service ${where} answered with something that is not JSON`, 'ND_ERR_AUTH');
    }
    const token = typeof doc?.token === 'string' && doc.token ? doc.token : typeof doc?.access_token === 'string' ? doc.access_token : '';
    if (!token) throw new NetworkError(`token service ${where} answered without a token`, 'ND_ERR_AUTH');
    const e = doc.expires_in;
    const expiresIn = typeof e === 'number' && Number.isFinite(e) && e > 0 ? e : DEFAULT_EXPIRES_IN;
    return { token, expiresIn, issuedAt: Date.now() };
  }
}
