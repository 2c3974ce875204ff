// Reads the OpenAPI documents in api/ (v1.yaml, v2.yaml) into the routes the server registers: for each operation
// its method, path, operationId, and the JSON schemas of its query string and body. Local `$ref`s are resolved
// here, so that fastify's ajv sees plain schemas. The documents are the one list of routes (api/README.md).
// Each is read from its JSON form beside it (`v1.parsed.json`), made from the YAML by scripts/api-json.sh and used only
// while its recorded digest is that of the YAML's text: loading and running the YAML parser took 70-80 ms of a daemon's
// 0.34 s to its API socket (measured, issue 11), the JSON form under 1 ms. A stale or missing form costs only that time.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseYaml } from '../config/parse.js';
import { projectRoot } from '../service/version.js';

export const API_DOCUMENTS = ['v1.yaml', 'v2.yaml'];
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

export interface ApiRoute {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE' | 'PATCH' | 'HEAD' | 'OPTIONS';
  path: string;
  operationId: string;
  /** JSON schema of the query string (every parameter is a string) */
  querystring: { type: 'object'; properties: Record<string, unknown>; required: string[] };
  /** JSON schema of the body, or undefined when the route takes none */
  body: unknown;
  bodyRequired: boolean;
  /** status codes the document lists for this operation */
  statuses: number[];
  document: string;
}

type Obj = Record<string, unknown>;

function resolveRefs(node: unknown, doc: Obj, where: string, depth = 0): unknown {
  if (depth > 64) throw new Error(`${where}: $ref nesting too deep (a cycle?)`);
  if (Array.isArray(node)) return node.map((n) => resolveRefs(n, doc, where, depth + 1));
  if (typeof node !== 'object' || node === null) return node;
  const o = node as Obj;
  if (typeof o.$ref === 'string') {
    const ref = o.$ref;
    if (!ref.startsWith('#/')) throw new Error(`${where}: only local $refs are supported, got ${ref}`);
    let target: unknown = doc;
    for (const part of ref.slice(2).split('/')) {
      target = typeof target === 'object' && target !== null ? (target as Obj)[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
    }
    if (target === undefined) throw new Error(`${where}: unresolved $ref ${ref}`);
    // sibling keys of a reference (description, summary) override the target's, as OpenAPI 3.1 allows
    const { $ref: _ref, ...siblings } = o;
    const resolved = resolveRefs(target, doc, where, depth + 1);
    return typeof resolved === 'object' && resolved !== null && !Array.isArray(resolved) ? { ...resolved, ...siblings } : resolved;
  }
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, resolveRefs(v, doc, where, depth + 1)]));
}

/** Strips what is documentation only, so ajv (strict about unknown keywords) gets a plain JSON schema. */
function schemaOnly(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(schemaOnly);
  if (typeof s !== 'object' || s === null) return s;
  const out: Obj = {};
  for (const [k, v] of Object.entries(s as Obj)) {
    if (k === 'description' || k === 'example' || k === 'examples' || k === 'summary') continue;
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as Obj).map(([p, ps]) => [p, schemaOnly(ps)])) : schemaOnly(v);
  }
  return out;
}

/** What `vN.parsed.json` holds: the digest of the YAML text it was made from, and the parsed document. */
export interface ParsedDocument {
  source_sha256: string;
  document: unknown;
}

export function parsedDocument(text: string): ParsedDocument {
  return { source_sha256: createHash('sha256').update(text).digest('hex'), document: parseYaml(text) };
}

export function parsedPathOf(dir: string, name: string): string {
  return path.join(dir, name.replace(/\.yaml$/, '.parsed.json'));
}

/** The document named `name`: its JSON form when that was made from this very text, else the YAML parsed. */
function readDocument(dir: string, name: string): unknown {
  const text = readFileSync(path.join(dir, name), 'utf8');
  try {
    const parsed = JSON.parse(readFileSync(parsedPathOf(dir, name), 'utf8')) as Partial<ParsedDocument>;
    if (parsed.source_sha256 === createHash('sha256').update(text).digest('hex')) return parsed.document;
  } catch {
    // missing or unreadable: the YAML is the source
  }
  return parseYaml(text);
}

/** Writes the JSON form of every document (scripts/api-json.sh, after a document is edited). */
export function writeParsedDocuments(dir = path.join(projectRoot(), 'api')): void {
  for (const name of API_DOCUMENTS) {
    writeFileSync(parsedPathOf(dir, name), `${JSON.stringify(parsedDocument(readFileSync(path.join(dir, name), 'utf8')), null, 2)}\n`);
  }
}

export function parseApiDocument(text: string, name: string): ApiRoute[] {
  return routesOf(parseYaml(text), name);
}

function routesOf(parsed: unknown, name: string): ApiRoute[] {
  const doc = parsed as Obj;
  if (typeof doc !== 'object' || doc === null || typeof doc.paths !== 'object') throw new Error(`api/${name}: not an OpenAPI document (no paths)`);
  const routes: ApiRoute[] = [];
  for (const [p, item] of Object.entries(doc.paths as Obj)) {
    for (const m of METHODS) {
      const raw = (item as Obj)[m];
      if (raw === undefined) continue;
      const where = `api/${name} ${m.toUpperCase()} ${p}`;
      const op = resolveRefs(raw, doc, where) as Obj;
      if (typeof op.operationId !== 'string' || !op.operationId) throw new Error(`${where}: no operationId`);
      const properties: Record<string, unknown> = {};
      const required: string[] = [];
      for (const param of (op.parameters ?? []) as Obj[]) {
        if (param.in !== 'query') throw new Error(`${where}: parameter ${String(param.name)} in ${String(param.in)} is not supported`);
        properties[param.name as string] = schemaOnly(param.schema ?? { type: 'string' });
        if (param.required) required.push(param.name as string);
      }
      const rb = op.requestBody as Obj | undefined;
      const content = rb?.content as Obj | undefined;
      const json = content?.['application/json'] as Obj | undefined;
      if (rb && !json?.schema) throw new Error(`${where}: requestBody without an application/json schema`);
      routes.push({
        method: m.toUpperCase() as ApiRoute['method'],
        path: p,
        operationId: op.operationId,
        querystring: { type: 'object', properties, required },
        body: json ? schemaOnly(json.schema) : undefined,
        bodyRequired: rb?.required === true,
        statuses: Object.keys((op.responses ?? {}) as Obj).map(Number),
        document: name,
      });
    }
  }
  return routes;
}

/** Every route of every document; an operationId used twice is an error. */
export function loadApiRoutes(dir = path.join(projectRoot(), 'api')): ApiRoute[] {
  const routes = API_DOCUMENTS.flatMap((name) => routesOf(readDocument(dir, name), name));
  const seen = new Set<string>();
  for (const r of routes) {
    if (seen.has(r.operationId)) throw new Error(`api/${r.document}: operationId ${r.operationId} is used twice`);
    seen.add(r.operationId);
  }
  return routes;
}
