// The response schemas of api/v1.yaml, and a checker for the subset of JSON Schema they use, so that a test can show
// that what a route returns is exactly what its document describes (types, required keys, array lengths, bounds).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { projectRoot } from '../helpers/paths.js';

type Obj = Record<string, unknown>;

function resolve(node: unknown, doc: Obj): unknown {
  if (Array.isArray(node)) return node.map((n) => resolve(n, doc));
  if (typeof node !== 'object' || node === null) return node;
  const o = node as Obj;
  if (typeof o.$ref === 'string') {
    let t: unknown = doc;
    for (const part of o.$ref.slice(2).split('/')) t = (t as Obj)[part];
    const { $ref: _r, ...siblings } = o;
    return { ...(resolve(t, doc) as Obj), ...siblings };
  }
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, resolve(v, doc)]));
}

/** The JSON schema of the `status` answer of the GET operation at `route` in api/v1.yaml. */
export function responseSchema(route: string, status: number): Obj {
  const doc = parseYaml(readFileSync(path.join(projectRoot, 'api', 'v1.yaml'), 'utf8')) as Obj;
  const op = ((doc.paths as Obj)[route] as Obj).get as Obj;
  const res = resolve((op.responses as Obj)[String(status)], doc) as Obj;
  return ((res.content as Obj)['application/json'] as Obj).schema as Obj;
}

/** The ways `value` breaks `schema` (empty when it conforms), each with its JSON path. */
export function schemaErrors(value: unknown, schema: Obj, at = '$'): string[] {
  const errs: string[] = [];
  if (schema.oneOf) {
    const ok = (schema.oneOf as Obj[]).filter((s) => schemaErrors(value, s, at).length === 0).length;
    return ok === 1 ? [] : [`${at}: matches ${ok} of the oneOf alternatives, not exactly 1`];
  }
  if (schema.const !== undefined && value !== schema.const) errs.push(`${at}: ${JSON.stringify(value)} is not ${JSON.stringify(schema.const)}`);
  if (schema.enum && !(schema.enum as unknown[]).includes(value)) errs.push(`${at}: ${JSON.stringify(value)} is not one of the enum`);
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
  const typeOf = (v: unknown) =>
    v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'number' ? (Number.isInteger(v) ? 'integer' : 'number') : typeof v;
  const t = typeOf(value);
  if (types.length > 0 && !types.includes(t) && !(t === 'integer' && types.includes('number'))) {
    return [`${at}: a ${t}, not ${types.join(' or ')}`];
  }
  if (typeof value === 'number' && typeof schema.minimum === 'number' && value < schema.minimum) errs.push(`${at}: ${value} < ${schema.minimum}`);
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) errs.push(`${at}: ${value.length} items < ${schema.minItems}`);
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) errs.push(`${at}: ${value.length} items > ${schema.maxItems}`);
    if (schema.items) value.forEach((v, i) => errs.push(...schemaErrors(v, schema.items as Obj, `${at}[${i}]`)));
  } else if (t === 'object') {
    const o = value as Obj;
    for (const k of (schema.required as string[] | undefined) ?? []) if (!(k in o)) errs.push(`${at}: missing ${k}`);
    const props = (schema.properties as Obj | undefined) ?? {};
    for (const [k, v] of Object.entries(o)) {
      if (props[k]) errs.push(...schemaErrors(v, props[k] as Obj, `${at}.${k}`));
      else if (schema.additionalProperties === false) errs.push(`${at}: unexpected key ${k}`);
      else if (typeof schema.additionalProperties === 'object') errs.push(...schemaErrors(v, schema.additionalProperties as Obj, `${at}.${k}`));
      if (schema.propertyNames && !new RegExp((schema.propertyNames as Obj).pattern as string).test(k)) errs.push(`${at}: key ${k} does not match propertyNames`);
    }
  }
  return errs;
}
