// The health check of a forward proxy (nydusd-runtime.md 7.5): only when `ping_url` is set, GET it every
// `check_interval` seconds with `connect_timeout` as the timeout; 200-399 is healthy, anything else (a status, a
// refused connection, a timeout) unhealthy. No check runs while no backend request happened in the last
// `check_pause_elapsed` seconds (an idle daemon does not ping forever). The proxy starts out healthy. The timer is
// unref'd (it never keeps a daemon alive) and stops on close; checks never overlap.
import type { Log } from '../../../log.js';
import { HttpClient } from './client.js';

/** The longest a Node.js timer can wait (ms). */
const TIMER_MAX_MS = 2 ** 31 - 1;

export interface ProxyHealthOptions {
  pingUrl: string;
  /** seconds between checks; below 1 s is taken as 1 s (0 would spin) */
  checkInterval: number;
  /** seconds of backend silence after which checks pause; 0 = never pause */
  checkPauseElapsed: number;
  /** seconds a ping may take (the backend's connect_timeout); 0 = the check interval */
  timeout: number;
  /** when the last backend request was made (ms since the epoch) */
  lastActivity: () => number;
  /** the proxy's address, for log lines */
  proxy: string;
  log?: Log;
  /** the ping (default: a GET of pingUrl, its status); a rejection counts as unhealthy */
  ping?: (url: URL, signal: AbortSignal) => Promise<number>;
  now?: () => number;
}

export class ProxyHealth {
  private ok = true;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly url: URL;
  private readonly client?: HttpClient;
  private readonly ping: (url: URL, signal: AbortSignal) => Promise<number>;
  private readonly stopper = new AbortController();
  /** checks run (for tests and diagnostics) */
  checks = 0;

  constructor(private readonly opts: ProxyHealthOptions) {
    this.url = new URL(opts.pingUrl);
    const timeout = opts.timeout > 0 ? opts.timeout : Math.max(opts.checkInterval, 1);
    if (!opts.ping) this.client = new HttpClient({ timeout, connectTimeout: timeout, skipVerify: false, caCertFiles: [], connections: 1 });
    this.ping = opts.ping ?? (async (url, signal) => {
      const res = await this.client!.request({ method: 'GET', url, signal });
      await res.discard();
      return res.status;
    });
    const every = Math.min(Math.max(opts.checkInterval, 1) * 1000, TIMER_MAX_MS);
    this.timer = setInterval(() => void this.check(), every);
    this.timer.unref();
  }

  get healthy(): boolean {
    return this.ok;
  }

  /** One check now (the timer calls it; tests may too). Skipped while the backend is idle or a check runs. */
  async check(): Promise<void> {
    if (this.running || this.stopper.signal.aborted) return;
    const now = (this.opts.now ?? Date.now)();
    if (this.opts.checkPauseElapsed > 0 && now - this.opts.lastActivity() > this.opts.checkPauseElapsed * 1000) return;
    this.running = true;
    this.checks++;
    let status = 0;
    let cause = '';
    try {
      status = await this.ping(this.url, this.stopper.signal);
      if (status < 200 || status >= 400) cause = `answered ${status}`;
    } catch (err) {
      cause = (err as Error).message;
    } finally {
      this.running = false;
    }
    if (this.stopper.signal.aborted) return;
    const ok = cause === '';
    if (ok !== this.ok) {
      this.ok = ok;
      if (ok) this.opts.log?.('info', `proxy ${this.opts.proxy} is healthy again (ping ${this.url.href} answered ${status}); requests go through it`);
      else this.opts.log?.('warn', `proxy ${this.opts.proxy} is not healthy (ping ${this.url.href} ${cause})`);
    }
  }

  /** Stops the checks (a ping in flight is aborted). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.stopper.abort(new Error('the proxy health check stopped'));
    await this.client?.close();
  }
}
