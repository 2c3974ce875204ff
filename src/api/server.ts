// The management API server (spec nydusd-runtime.md 3.1-3.3): fastify over HTTP/1.1 on the Unix socket --apisock,
// routes registered from api/*.yaml (operationId -> HANDLERS), query strings and bodies validated with the documents'
// schemas. Connections are never timed out by the server (DECISIONS.md 15; snapshotter-contract.md 3.8: the
// snapshotter treats a hang-up of its idle liveness connection as the daemon's death).
import { lstatSync, unlinkSync, chmodSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { UnexpectedEventError } from '../service/state-machine.js';
import type { Logger } from '../service/logger.js';
import { loadApiRoutes, type ApiRoute } from './documents.js';
import { ApiError, errorBody } from './errors.js';
import { RawJson } from './raw-json.js';
import { prepareSocketPath } from './socket-path.js';
import { LazySchemas } from './validators.js';
import { HANDLERS, type ApiContext, type Handler } from './handlers.js';

/** The reference's largest request body (spec 3.1). */
export const MAX_BODY_BYTES = 51200;

export interface ApiServerOptions {
  socketPath: string;
  /** permission bits of the socket file (default 0600) */
  mode?: number;
  context: ApiContext;
  log: Logger;
  routes?: ApiRoute[];
  handlers?: Record<string, Handler>;
}

interface RouteConfig {
  wrapper: string;
  takesBody: boolean;
  bodyRequired: boolean;
}

/** Documents and handlers must name the same operations: a mismatch is a start-up error, not a silent 404. */
export function checkHandlers(routes: ApiRoute[], handlers: Record<string, Handler>): void {
  const documented = new Set(routes.map((r) => r.operationId));
  const missing = [...documented].filter((id) => !handlers[id]);
  const extra = Object.keys(handlers).filter((id) => !documented.has(id));
  if (missing.length) throw new Error(`management API: no handler for the documented operations ${missing.join(', ')}`);
  if (extra.length) throw new Error(`management API: handlers for operations no document declares: ${extra.join(', ')}`);
}

/** Query strings as the reference decodes them: form-urlencoded, `+` is a space, the first occurrence of a key wins. */
function parseQuery(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(s)) {
    if (k !== '__proto__' && !Object.hasOwn(out, k)) out[k] = v;
  }
  return out;
}

/** `GET http://localhost/api/v1/daemon` (absolute form) is served as `GET /api/v1/daemon` (spec 3.2). */
function pathOf(url: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(url);
  const rest = m ? url.slice(m[0].length) : url;
  return rest.startsWith('/') ? rest : `/${rest}`;
}

function send(reply: FastifyReply, status: number, body?: unknown): FastifyReply {
  reply.code(status).header('Server', 'Nydus API');
  if (body === undefined) return reply.send();
  if (body instanceof RawJson) return reply.type('application/json').send(body.text);
  // compact JSON, exactly `application/json` (spec 3.1)
  return reply.type('application/json').send(JSON.stringify(body));
}

/** Whether the request announces a body (Content-Length > 0, or any transfer coding). */
function announcesBody(req: FastifyRequest): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

export class ApiServer {
  private inode: number | undefined;
  private readonly connections = new Set<Socket>();

  private constructor(
    readonly app: FastifyInstance,
    readonly socketPath: string,
    private readonly log: Logger,
    private readonly schemas: LazySchemas,
  ) {}

  /** Compiles every route's request schemas now rather than on each route's first request (validators.ts). */
  compileSchemas(): void {
    this.schemas.compileAll();
  }

  /** Builds the server, checks documents against handlers, and listens (replacing a stale socket file). */
  static async start(o: ApiServerOptions): Promise<ApiServer> {
    const routes = o.routes ?? loadApiRoutes();
    const handlers = o.handlers ?? HANDLERS;
    checkHandlers(routes, handlers);
    const schemas = new LazySchemas();
    const app = buildApp(routes, handlers, o.context, o.log, schemas);
    const server = new ApiServer(app, o.socketPath, o.log, schemas);
    app.server.on('connection', (s: Socket) => {
      server.connections.add(s);
      s.once('close', () => server.connections.delete(s));
    });
    await server.listen(o.mode ?? 0o600);
    return server;
  }

  private async listen(mode: number): Promise<void> {
    await prepareSocketPath(this.socketPath);
    // The socket is made under a temporary name and renamed into place once it listens: bind(2) creates the file
    // before listen(2) runs, and a client polling for the file (as the snapshotter does, snapshotter-contract.md 8
    // item 6) could connect in between and be refused (seen once in CI on a loaded machine). Sun paths are limited
    // to 107 bytes; where the temporary name would not fit, the socket is made in place.
    const tmp = path.join(path.dirname(this.socketPath), `.nydusd-api-${process.pid}.sock`);
    const bindPath = Buffer.byteLength(tmp) < 108 ? tmp : this.socketPath;
    if (bindPath !== this.socketPath) rmSync(tmp, { force: true });
    // the socket is created with exactly `mode` whatever the process umask: never wider, not even for a moment
    const umask = process.umask(0o777 & ~mode);
    try {
      await this.app.listen({ path: bindPath });
    } finally {
      process.umask(umask);
    }
    chmodSync(bindPath, mode);
    if (bindPath !== this.socketPath) {
      try {
        renameSync(bindPath, this.socketPath);
      } catch (err) {
        await this.app.close().catch(() => undefined);
        rmSync(bindPath, { force: true });
        throw new Error(`cannot put the API socket in place at ${this.socketPath}: ${(err as Error).message}`);
      }
    }
    this.inode = statSync(this.socketPath).ino;
    this.log.info(`management API listening on ${this.socketPath} (mode 0${mode.toString(8)})`);
  }

  /** Stops listening, ends every connection and removes the socket file (if it is still ours). Idempotent. */
  async close(): Promise<void> {
    const closing = this.app.close();
    for (const s of this.connections) s.destroy();
    await closing.catch((err) => this.log.warn(`closing the management API: ${(err as Error).message}`));
    try {
      if (this.inode !== undefined && lstatSync(this.socketPath).ino === this.inode) unlinkSync(this.socketPath);
    } catch {
      // already removed (libuv unlinks a listening socket's path when it closes)
    }
    this.inode = undefined;
  }
}


function buildApp(routes: ApiRoute[], handlers: Record<string, Handler>, ctx: ApiContext, log: Logger, schemas: LazySchemas): FastifyInstance {
  const documentedPaths = new Set(routes.map((r) => r.path));
  // the latest request of each connection: a parser error in the body of a request already answered (fastify may
  // answer from the headers, e.g. a body on a route that takes none) must not get a second answer
  const latest = new WeakMap<Socket, http.ServerResponse>();
  const app = Fastify({
    logger: false,
    bodyLimit: MAX_BODY_BYTES,
    // only the documented routes: no automatic HEAD routes
    exposeHeadRoutes: false,
    return503OnClosing: true,
    rewriteUrl: (req) => pathOf(req.url ?? '/'),
    routerOptions: { querystringParser: parseQuery },
    // query values stay strings and bodies keep their JSON types: {"log_level": 5} is a wrong type, not "5"
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false } },
    schemaController: schemas.controller,
    serverFactory: (handler) => {
      // no Host header needed: this is a Unix socket, and node's own bare 400 for a request without one would not
      // have the error shape
      const server = http.createServer({ requestTimeout: 0, headersTimeout: 0, keepAliveTimeout: 0, requireHostHeader: false }, handler);
      server.timeout = 0;
      server.keepAliveTimeout = 0;
      server.headersTimeout = 0;
      server.requestTimeout = 0;
      // an Expect header other than 100-continue is ignored and the request served (node would answer a bare 417)
      server.on('checkExpectation', handler);
      server.prependListener('request', (req: http.IncomingMessage, res: http.ServerResponse) => latest.set(req.socket, res));
      return server;
    },
    // a path fastify cannot decode (`%zz`) or route: "bad URI", 400 (spec 3.3), in the error shape like the rest
    frameworkErrors: (err, _req, reply) => send(reply, 400, errorBody(`BadRequest: ${err.message}`)),
    // malformed HTTP (the parser's errors): the error shape too, then the connection ends (nothing can follow)
    clientErrorHandler: (err: Error & { code?: string }, socket: Socket) => {
      // a connection already answered and closing (bytes after a response that ended it): nothing more to say
      if (!socket.writable || err.code === 'HPE_CLOSED_CONNECTION' || err.code === 'ECONNRESET') return socket.destroy();
      const current = latest.get(socket);
      if (current && current.headersSent && !current.req.complete) return socket.destroy();
      const body = JSON.stringify(errorBody(`BadRequest: malformed HTTP request (${err.code ?? err.message})`));
      socket.end(`HTTP/1.1 400 Bad Request\r\nServer: Nydus API\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    },
  });

  // every body is JSON whatever it is labelled (the reference accepts application/json and text/plain, and nydusctl
  // may send none); an empty body is no body
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: MAX_BODY_BYTES }, (_req, text, done) => {
    const s = text as string;
    if (s.length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse(s));
    } catch (err) {
      done(new ApiError(400, `ParseBody: the body is not valid JSON (${(err as Error).message})`, false), undefined);
    }
  });

  // bodies are framed by Content-Length or chunked (spec 3.1); another transfer coding would make the body run to
  // the end of the connection: refused from the headers, and the connection closed (RFC 9112 6.3)
  app.addHook('onRequest', (req, reply, done) => {
    const te = req.headers['transfer-encoding'];
    if (te !== undefined && !/(^|,)\s*chunked\s*$/i.test(te)) {
      reply.header('connection', 'close');
      send(reply, 400, errorBody(`BadRequest: Transfer-Encoding ${JSON.stringify(te)}: bodies are framed by Content-Length or chunked only`));
      return;
    }
    done();
  });

  app.setNotFoundHandler((req, reply) => {
    const p = pathOf(req.url).split('?')[0]!;
    if (documentedPaths.has(p)) return send(reply, 400, errorBody(`BadRequest: ${req.method} is not served on ${p}`));
    return send(reply, 404, errorBody('NoRoute'));
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const wrapper = (req.routeOptions.config as Partial<RouteConfig> | undefined)?.wrapper;
    const wrap = (m: string) => (wrapper ? `${wrapper}: ${m}` : m);
    let status = 500;
    let message: string;
    if (err instanceof ApiError) {
      status = err.status;
      message = err.wrapped ? wrap(err.message) : err.message;
    } else if (err instanceof UnexpectedEventError) {
      status = 400;
      message = wrap(`unexpected state machine transition event ${err.event} (the daemon is ${err.state})`);
    } else if (err.validation) {
      status = 400;
      const what = err.validationContext === 'querystring' ? 'QueryString' : 'ParseBody';
      message = `${what}: ${err.validationContext === 'querystring' ? 'query string' : 'body'} ${err.message.replace(/^(querystring|body)\s*/, '')}`;
    } else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      status = 400;
      message = `BadRequest: the request body is larger than ${MAX_BODY_BYTES} bytes`;
      // the rest of the body is read and dropped (its framing says where it ends), so the client, still writing it,
      // reads this answer instead of a reset
      req.raw.resume();
    } else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      // the framework's other request errors (bad content length, bad URL, ...): all 400 in the reference
      status = 400;
      message = `BadRequest: ${err.message}`;
    } else {
      message = wrap(err.message);
    }
    if (status >= 500) log.warn(`API ${req.method} ${pathOf(req.url).split('?')[0]}: ${status} ${message}`);
    // fastify closes the connection after a body it could not parse; framing is intact (bodies are read to their
    // end, or dropped as above), so it stays open as every connection does (spec 3.1: the server never closes one)
    reply.removeHeader('connection');
    return send(reply, status, errorBody(message));
  });

  for (const r of routes) {
    const handler = handlers[r.operationId]!;
    const config: RouteConfig = { wrapper: handler.wrapper, takesBody: r.body !== undefined, bodyRequired: r.bodyRequired };
    app.route({
      method: r.method,
      url: r.path,
      config,
      // a route without query parameters takes any query string (the reference ignores unknown ones), which its empty
      // schema would only confirm: none is given, so the snapshotter's GET /api/v1/daemon never waits for ajv
      schema: {
        ...(Object.keys(r.querystring.properties).length > 0 ? { querystring: r.querystring } : {}),
        ...(r.body !== undefined ? { body: r.body } : {}),
      },
      // each route takes a body or does not (spec 3.2): the wrong combination is 400 BadRequest, checked before
      // anything is read
      onRequest: (req, reply, done) => {
        if (!config.takesBody && announcesBody(req)) {
          send(reply, 400, errorBody(`BadRequest: ${req.method} ${r.path} takes no body`));
          return;
        }
        done();
      },
      preValidation: (req, reply, done) => {
        if (config.bodyRequired && req.body === undefined) {
          send(reply, 400, errorBody(`BadRequest: ${req.method} ${r.path} needs a JSON body`));
          return;
        }
        done();
      },
      handler: async (req, reply) => {
        const after: (() => void)[] = [];
        const result = await handler.handle(
          { query: req.query as Record<string, string>, body: req.body, afterResponse: (fn) => after.push(fn) },
          ctx,
        );
        if (after.length) reply.raw.once('finish', () => after.forEach((fn) => fn()));
        return result === undefined ? send(reply, 204) : send(reply, 200, result);
      },
    });
  }
  return app;
}
