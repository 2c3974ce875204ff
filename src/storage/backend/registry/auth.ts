// The registry's authorization state (nydusd-runtime.md 7.2 step 4, 7.3, 2.6): the credential, the one cached
// `Authorization` value of the backend (not per scope), the last Bearer challenge, and the timer that refreshes a
// token before it expires. Nothing here logs a credential or a token: log lines name schemes, realms and statuses.
import type { Log } from '../../../log.js';
import { NetworkError } from '../errors.js';
import { bearerParams, type Challenge } from './challenge.js';
import { TokenFetcher, type BearerParams, type Token } from './token.js';

/** the longest back-off between failed refreshes (7.3), and the first */
const BACKOFF_FIRST_SEC = 5;
const BACKOFF_MAX_SEC = 600;
/** a token is refreshed this long before it expires, minus jitter (7.3) */
const REFRESH_MARGIN_SEC = 20;
/**
 * The reference checks for a due refresh every 5 s (7.3), so a token living less than the margin is refreshed at most
 * that often, not in a loop.
 */
const REFRESH_MIN_INTERVAL_MS = 5_000;

/** An Authorization value to try, and the token behind it when it is a Bearer one. */
export interface Authorization {
  header: string;
  token?: Token;
}

export class RegistryAuth {
  private credential: string | undefined;
  private cached: Authorization | undefined;
  private bearer: BearerParams | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private inflight: { key: string; p: Promise<Token> } | undefined;
  private closed = false;

  private readonly log?: Log;

  constructor(
    readonly tokens: TokenFetcher,
    opts: { credential?: string; registryToken?: string; log?: Log },
  ) {
    this.credential = opts.credential;
    this.log = opts.log;
    // registry_token: `Bearer <token>` from the first request (2.4)
    if (opts.registryToken) this.cached = { header: `Bearer ${opts.registryToken}` };
  }

  /** The cached Authorization value, sent with every request to the registry. */
  get header(): string | undefined {
    return this.cached?.header;
  }

  /**
   * The Authorization to resend with after a 401 carrying `challenge`. Bearer: a token from the token service; Basic:
   * the credential. Throws ND_ERR_AUTH when neither can be had (no challenge, an unknown scheme, Bearer without realm
   * or service, Basic without a credential, the token service refusing).
   */
  async authorize(challenge: Challenge | undefined, signal?: AbortSignal): Promise<Authorization> {
    if (!challenge) throw new NetworkError('the registry answered 401 without a WWW-Authenticate challenge', 'ND_ERR_AUTH', { status: 401 });
    if (challenge.scheme === 'basic') {
      if (!this.credential) {
        throw new NetworkError('the registry wants Basic authentication, but no credential is configured (auth, IMAGE_PULL_AUTH or registry_auth)', 'ND_ERR_AUTH', { status: 401 });
      }
      return { header: `Basic ${this.credential}` };
    }
    if (challenge.scheme === 'bearer') {
      const params = bearerParams(challenge);
      if (!params) throw new NetworkError('the registry answered 401 with a Bearer challenge without realm or service', 'ND_ERR_AUTH', { status: 401 });
      this.bearer = params;
      const token = await this.fetchToken(params, signal);
      return { header: `Bearer ${token.token}`, token };
    }
    throw new NetworkError(`the registry answered 401 with an unsupported authentication scheme "${challenge.scheme}"`, 'ND_ERR_AUTH', { status: 401 });
  }

  /** The resend with `auth` succeeded: cache it for every later request (7.2 step 4), and plan its refresh. */
  accept(auth: Authorization): void {
    this.cached = auth;
    this.failures = 0;
    this.scheduleRefresh();
  }

  /**
   * The credential changed (2.6): '' drops the cached credentials; with a known Bearer challenge a fresh token is
   * fetched now with the new credential; otherwise Basic with the new value from now on. An invalid value has
   * been refused by the caller (credential.ts).
   */
  setCredential(value: string | undefined): void {
    this.credential = value || undefined;
    if (!value) {
      this.cached = undefined;
      this.clearTimer();
      this.log?.('info', 'registry credential cleared: requests are anonymous until a challenge asks otherwise');
      return;
    }
    if (this.bearer) {
      this.log?.('info', 'registry credential changed: fetching a fresh token with it');
      this.refreshNow();
    } else {
      if (this.cached?.header.startsWith('Basic ')) this.cached = { header: `Basic ${value}` };
      this.log?.('info', 'registry credential changed: used from the next request on');
    }
  }

  close(): void {
    this.closed = true;
    this.clearTimer();
  }

  /** One token fetch at a time per challenge and credential: concurrent 401s share it. */
  private fetchToken(params: BearerParams, signal?: AbortSignal): Promise<Token> {
    const key = `${params.realm}\n${params.service}\n${params.scope}\n${this.credential ?? ''}`;
    if (this.inflight?.key === key) return this.inflight.p;
    const p = this.tokens.fetch(params, this.credential, signal);
    const entry = { key, p };
    this.inflight = entry;
    const clear = () => {
      if (this.inflight === entry) this.inflight = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  private clearTimer(): void {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  /** refresh_at = max(now, issued + expires_in - 20 - jitter), jitter uniform in [0, min(expires_in/10, 300)] s (7.3) */
  private scheduleRefresh(): void {
    this.clearTimer();
    const token = this.cached?.token;
    if (!token || !this.bearer || this.closed) return;
    const jitter = Math.random() * Math.min(token.expiresIn / 10, 300);
    const at = token.issuedAt + (token.expiresIn - REFRESH_MARGIN_SEC - jitter) * 1000;
    this.armTimer(Math.max(REFRESH_MIN_INTERVAL_MS, at - Date.now()));
  }

  private armTimer(ms: number): void {
    this.clearTimer();
    if (this.closed) return;
    this.refreshTimer = setTimeout(() => this.refreshNow(), Math.min(ms, 2 ** 31 - 1));
    // a pending refresh never keeps the process alive
    this.refreshTimer.unref();
  }

  private refreshNow(): void {
    const params = this.bearer;
    if (!params || this.closed) return;
    this.fetchToken(params).then(
      (token) => {
        if (this.closed) return;
        this.log?.('debug', `registry token refreshed from ${new URL(params.realm).host} (valid ${token.expiresIn} s)`);
        this.accept({ header: `Bearer ${token.token}`, token });
      },
      (err: unknown) => {
        if (this.closed) return;
        const backoff = Math.min(BACKOFF_FIRST_SEC * 2 ** this.failures, BACKOFF_MAX_SEC);
        this.failures++;
        this.log?.('warn', `registry token refresh failed: ${(err as Error).message}; next try in ${backoff} s`);
        this.armTimer(backoff * 1000);
      },
    );
  }
}
