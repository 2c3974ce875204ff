// The Kraken agent's health (issue 11 scope 4: "`/health` drives a health check like the proxy's"; spec p2p-seeds.md 3:
// `GET /health` -> 200 `OK`). Every `check_interval` seconds one GET /health; any other answer, or none within the
// probe's timeout, marks the agent unhealthy until a later check passes. A download that cannot even connect marks it
// unhealthy at once (`down`), so the reads after it fail fast instead of each waiting to connect again. Transitions
// are logged once each, not every check.
import type { Log } from '../../../log.js';
import type { HttpTransport } from '../http/client.js';

export class AgentHealth {
  private ok = true;
  private why = '';
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  /** checks made, for tests and diagnostics */
  checks = 0;

  constructor(
    private readonly url: URL,
    private readonly http: HttpTransport,
    intervalSec: number,
    private readonly agentName: string,
    private readonly log?: Log,
  ) {
    if (intervalSec > 0) {
      this.timer = setInterval(() => void this.check(), Math.min(intervalSec * 1000, 2 ** 31 - 1));
      this.timer.unref();
    }
  }

  get healthy(): boolean {
    return this.ok;
  }

  /** whether periodic checks are running */
  get scheduled(): boolean {
    return this.timer !== undefined;
  }

  /** why the agent is unhealthy ('' while healthy) */
  get reason(): string {
    return this.why;
  }

  /**
   * The agent failed in a way that says it is not there (refused, unreachable). Only with health checks on: without
   * them nothing would ever mark it healthy again.
   */
  down(why: string): void {
    if (this.timer) this.set(false, why);
  }

  /** One check now (one at a time: a check still running is awaited, not doubled). */
  check(): Promise<void> {
    this.checking ??= this.probe().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async probe(): Promise<void> {
    this.checks++;
    try {
      const res = await this.http.request({ method: 'GET', url: this.url });
      const text = (await res.text(256)).trim();
      if (res.status === 200) this.set(true, '');
      else this.set(false, `GET /health answered ${res.status}${text ? `: ${text.slice(0, 100)}` : ''}`);
    } catch (err) {
      this.set(false, `GET /health failed: ${(err as Error).message}`);
    }
  }

  private set(ok: boolean, why: string): void {
    if (ok !== this.ok) this.log?.(ok ? 'info' : 'warn', ok ? `kraken: ${this.agentName} is healthy again` : `kraken: ${this.agentName} is unhealthy: ${why}`);
    this.ok = ok;
    this.why = why;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
