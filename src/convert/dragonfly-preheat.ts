// A client of Dragonfly's preheat APIs (spec p2p-seeds.md): the 2.x manager's Open API (section 1: `POST /oapi/v1/jobs`
// with a personal access token as Bearer, then `GET /oapi/v1/jobs/<id>` until SUCCESS or FAILURE) and the 0.x
// SuperNode API (section 2: `POST /api/v1/preheats` -> `{"ID"}`, `GET /api/v1/preheats/<id>` -> `status` WAITING,
// RUNNING, SUCCESS, FAILED). Dragonfly 2.x managers keep the SuperNode routes for old clients at the root
// (`/preheats`, answering `{"id"}` and `FAIL`), so the legacy API tries `/api/v1/preheats` and, when the manager has no
// such route (404, or v2.0.9's 301), `/preheats`.
// Both APIs' states are mapped onto one set (JobState) and every failure is one line naming the manager and the route.
// Requests go through the project's one HTTP client (undici, src/storage/backend/http/client.ts).
import { errorCode } from '../storage/backend/errors.js';
import { HttpClient, type HttpMethod, type HttpResponse } from '../storage/backend/http/client.js';

export type PreheatApi = 'oapi' | 'legacy';
export const PREHEAT_APIS: readonly PreheatApi[] = ['oapi', 'legacy'];
/** Which peers warm the data (Open API `args.scope`, p2p-seeds.md 1); the manager's default is single_seed_peer. */
export const PREHEAT_SCOPES = ['single_seed_peer', 'all_seed_peers', 'all_peers'] as const;
export type PreheatScope = (typeof PREHEAT_SCOPES)[number];

/** One preheat: a file (a blob URL) or an image (its manifest URL, which the manager resolves to layers). */
export interface PreheatRequest {
  type: 'file' | 'image';
  url: string;
  /** sent with the peers' requests for `url` (registry Authorization) */
  headers?: Record<string, string>;
  /** image preheats: the registry's user and password, and the platform of a manifest list */
  username?: string;
  password?: string;
  platform?: string;
  /** Open API only */
  scope?: PreheatScope;
  /** Open API only: scheduler clusters to preheat in (none = every cluster) */
  clusterIds?: number[];
}

/** A job's state, the same for both APIs. */
export type JobState = 'PENDING' | 'RUNNING' | 'SUCCESS' | 'FAILURE';

export interface JobStatus {
  id: string;
  state: JobState;
  /** the state as the manager wrote it (`STARTED`, `WAITING`, `FAIL` ...) */
  raw: string;
  /** what the manager says went wrong, for a FAILURE */
  error?: string;
}

/** Why a request to the manager failed: how the caller should treat it. */
export type ManagerErrorKind =
  /** the token was refused (401/403) */
  | 'auth'
  /** the manager cannot be reached (refused, unreachable, timed out) */
  | 'unreachable'
  /** the manager answered with an error status or an answer we cannot read */
  | 'status';

export class ManagerError extends Error {
  constructor(message: string, readonly kind: ManagerErrorKind, readonly status?: number) {
    super(message);
    this.name = 'ManagerError';
  }
}

export interface DragonflyManagerOptions {
  /** the manager's base URL (http or https) */
  url: string;
  api: PreheatApi;
  /** the personal access token (Open API); a secret, never in a message */
  token?: string;
  /** seconds for one request, body included */
  requestTimeoutSec?: number;
}

/** Parses the manager URL; a clear error for anything that is not http(s)://host[:port][/path]. */
export function managerUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`invalid Dragonfly manager URL '${text}' (expected http://host:port)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`invalid Dragonfly manager URL '${text}': the scheme must be http or https`);
  if (url.search || url.hash || url.username || url.password) throw new Error(`invalid Dragonfly manager URL '${text}': no query, fragment or credentials allowed`);
  return url;
}

const OAPI_ACTIVE = new Set(['PENDING', 'RECEIVED', 'RETRY']);
const FAILED = new Set(['FAILURE', 'FAILED', 'FAIL']);

/** A manager state text -> JobState (both APIs' names; anything unknown is still running, until the timeout). */
export function jobState(raw: string): JobState {
  const s = raw.toUpperCase();
  if (s === 'SUCCESS') return 'SUCCESS';
  if (FAILED.has(s)) return 'FAILURE';
  if (OAPI_ACTIVE.has(s) || s === 'WAITING') return 'PENDING';
  return 'RUNNING';
}

/** The errors a 2.x job's `result` carries: `{"State", "JobStates": [{"State", "Error", "TaskName"}]}`. */
function resultError(result: unknown): string | undefined {
  if (typeof result !== 'object' || result === null) return undefined;
  const states = (result as { JobStates?: unknown }).JobStates;
  if (!Array.isArray(states)) return undefined;
  const errors = states
    .map((s) => (typeof s === 'object' && s !== null ? (s as { Error?: unknown }).Error : undefined))
    .filter((e): e is string => typeof e === 'string' && e.trim() !== '')
    .map((e) => e.trim().replace(/\s+/g, ' '));
  return errors.length > 0 ? [...new Set(errors)].join('; ') : undefined;
}

export class DragonflyManager {
  readonly url: URL;
  private readonly http: HttpClient;
  /** the legacy API's route, once known (`/api/v1/preheats` or `/preheats`) */
  private legacyRoute: string | undefined;

  constructor(private readonly o: DragonflyManagerOptions) {
    this.url = managerUrl(o.url);
    this.http = new HttpClient({ timeout: o.requestTimeoutSec ?? 30, connectTimeout: 10, skipVerify: false, caCertFiles: [] });
  }

  /** `<manager>` as messages name it */
  get name(): string {
    return `Dragonfly manager ${this.url.origin}${this.url.pathname.replace(/\/+$/, '')}`;
  }

  /** Creates a preheat job; its first status. */
  async create(req: PreheatRequest, signal?: AbortSignal): Promise<JobStatus> {
    if (this.o.api === 'oapi') {
      const args: Record<string, unknown> = { type: req.type, url: req.url };
      if (req.headers && Object.keys(req.headers).length > 0) args.headers = req.headers;
      if (req.username !== undefined) args.username = req.username;
      if (req.password !== undefined) args.password = req.password;
      if (req.platform !== undefined) args.platform = req.platform;
      if (req.scope !== undefined) args.scope = req.scope;
      const body: Record<string, unknown> = { type: 'preheat', args };
      if (req.clusterIds && req.clusterIds.length > 0) body.scheduler_cluster_ids = req.clusterIds;
      return this.oapiJob(await this.json('POST', '/oapi/v1/jobs', body, signal), 'POST /oapi/v1/jobs');
    }
    const body: Record<string, unknown> = { type: req.type, url: req.url };
    if (req.headers && Object.keys(req.headers).length > 0) body.headers = req.headers;
    const routes = this.legacyRoute ? [this.legacyRoute] : ['/api/v1/preheats', '/preheats'];
    for (const route of routes) {
      const res = await this.send('POST', route, body, signal);
      // a SuperNode route a 2.x manager does not have: 404, or gin's redirect to a trailing slash
      if ([301, 307, 308, 404].includes(res.status) && route !== routes[routes.length - 1]) {
        await res.discard();
        continue;
      }
      const answer = await this.read(res, `POST ${route}`);
      this.legacyRoute = route;
      const id = (answer as { ID?: unknown; id?: unknown }).ID ?? (answer as { id?: unknown }).id;
      if (typeof id !== 'string' && typeof id !== 'number') throw new ManagerError(`${this.name}: POST ${route} answered without a preheat id: ${JSON.stringify(answer).slice(0, 200)}`, 'status');
      return { id: String(id), state: 'PENDING', raw: 'WAITING' };
    }
    throw new Error('unreachable');
  }

  /** The job's status now. */
  async status(id: string, signal?: AbortSignal): Promise<JobStatus> {
    if (this.o.api === 'oapi') {
      const route = `/oapi/v1/jobs/${encodeURIComponent(id)}`;
      return this.oapiJob(await this.json('GET', route, undefined, signal), `GET ${route}`);
    }
    const route = `${this.legacyRoute ?? '/api/v1/preheats'}/${encodeURIComponent(id)}`;
    const answer = (await this.json('GET', route, undefined, signal)) as { status?: unknown };
    if (typeof answer.status !== 'string') throw new ManagerError(`${this.name}: GET ${route} answered without a status: ${JSON.stringify(answer).slice(0, 200)}`, 'status');
    const state = jobState(answer.status);
    return { id, state, raw: answer.status, ...(state === 'FAILURE' ? { error: `the manager reports ${answer.status}` } : {}) };
  }

  close(): Promise<void> {
    return this.http.close();
  }

  private oapiJob(answer: unknown, what: string): JobStatus {
    const j = answer as { id?: unknown; state?: unknown; result?: unknown };
    if ((typeof j.id !== 'number' && typeof j.id !== 'string') || typeof j.state !== 'string') {
      throw new ManagerError(`${this.name}: ${what} answered something that is not a job: ${JSON.stringify(answer).slice(0, 200)}`, 'status');
    }
    const state = jobState(j.state);
    const error = state === 'FAILURE' ? (resultError(j.result) ?? `the manager reports ${j.state} without an error text`) : undefined;
    return { id: String(j.id), state, raw: j.state, ...(error ? { error } : {}) };
  }

  private async json(method: HttpMethod, route: string, body: unknown, signal?: AbortSignal): Promise<unknown> {
    return this.read(await this.send(method, route, body, signal), `${method} ${route}`);
  }

  private async send(method: HttpMethod, route: string, body: unknown, signal?: AbortSignal): Promise<HttpResponse> {
    const url = new URL(this.url.pathname.replace(/\/+$/, '') + route, this.url.origin);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.o.token) headers.authorization = `Bearer ${this.o.token}`;
    try {
      return await this.http.request({ method, url, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
    } catch (e) {
      if (signal?.aborted && e === signal.reason) throw e;
      throw new ManagerError(`${this.name} cannot be reached (${method} ${route}): ${(e as Error).message}`, 'unreachable');
    }
  }

  /** The JSON of a 2xx answer; an error naming the route, the status and the manager's message otherwise. */
  private async read(res: HttpResponse, what: string): Promise<unknown> {
    let text: string;
    try {
      text = await res.text(256 * 1024);
    } catch (e) {
      throw new ManagerError(`${this.name}: ${what}: the answer broke off: ${(e as Error).message}`, errorCode(e) === 'ND_ERR_TIMEOUT' ? 'unreachable' : 'status');
    }
    const message = managerMessage(text);
    if (res.status === 401 || res.status === 403) {
      const why = this.o.token ? 'refused the personal access token' : 'wants a personal access token (--dragonfly-token)';
      throw new ManagerError(`${this.name} ${why}: ${what} answered ${res.status}${message ? `: ${message}` : ''}`, 'auth', res.status);
    }
    if (res.status < 200 || res.status > 299) {
      throw new ManagerError(`${this.name}: ${what} answered ${res.status}${message ? `: ${message}` : ''}`, 'status', res.status);
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new ManagerError(`${this.name}: ${what} answered ${res.status} with a body that is not JSON: ${text.slice(0, 120).replace(/\s+/g, ' ')}`, 'status', res.status);
    }
  }
}

/** The manager's error text: `{"message"}`, `{"errors"}` (gin's binding errors) or the SuperNode's `{"code","message"}`. */
function managerMessage(text: string): string {
  try {
    const o = JSON.parse(text) as { message?: unknown; errors?: unknown };
    const m = typeof o.message === 'string' ? o.message : typeof o.errors === 'string' ? o.errors : undefined;
    if (m) return m.trim().replace(/\s+/g, ' ');
  } catch {
    // not JSON: the text itself
  }
  return text.trim().replace(/\s+/g, ' ').slice(0, 200);
}
