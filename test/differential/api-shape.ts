// The same management API request put to both daemons, and how the answers differ in what a client can rely on:
// the status, whether there is a body, and the body's deep shape (every key path and its JSON type; array elements
// merged under `[]`), never its values.
import { request, type ApiResponse } from '../api/helpers.js';

export interface ApiRequest {
  method: string;
  url: string;
  body?: string;
}

export interface ApiDifference {
  request: string;
  kind: 'status' | 'body' | 'missing key' | 'extra key' | 'type';
  /** key path for shape differences (`backend_collection./.config.cache`), '' otherwise */
  path: string;
  ref: string;
  ours: string;
}

const typeOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** Every key path of `v` with the JSON types seen there. */
export function shape(v: unknown, at = '', out = new Map<string, Set<string>>()): Map<string, Set<string>> {
  (out.get(at) ?? out.set(at, new Set()).get(at)!).add(typeOf(v));
  if (Array.isArray(v)) for (const e of v) shape(e, `${at}[]`, out);
  else if (v !== null && typeof v === 'object') for (const [k, e] of Object.entries(v)) shape(e, at ? `${at}.${k}` : k, out);
  return out;
}

export const label = (r: ApiRequest): string => `${r.method}${r.url ? ` ${r.url}` : ''}${r.body !== undefined ? ` ${r.body.length > 80 ? `${r.body.slice(0, 80)}...` : r.body}` : ''}`;

export function compareAnswers(req: ApiRequest, ref: ApiResponse, ours: ApiResponse): ApiDifference[] {
  const request = label(req);
  const out: ApiDifference[] = [];
  if (ref.status !== ours.status) out.push({ request, kind: 'status', path: '', ref: String(ref.status), ours: String(ours.status) });
  const hasBody = (r: ApiResponse) => (r.text === '' ? 'no body' : r.json === undefined ? 'non-JSON body' : 'JSON body');
  if (hasBody(ref) !== hasBody(ours)) {
    out.push({ request, kind: 'body', path: '', ref: hasBody(ref), ours: hasBody(ours) });
    return out;
  }
  if (ref.json === undefined) return out;
  const [a, b] = [shape(ref.json), shape(ours.json)];
  for (const p of new Set([...a.keys(), ...b.keys()])) {
    const [ta, tb] = [a.get(p), b.get(p)];
    if (!tb) out.push({ request, kind: 'missing key', path: p, ref: [...ta!].join('|'), ours: '' });
    else if (!ta) out.push({ request, kind: 'extra key', path: p, ref: '', ours: [...tb].join('|') });
    else if ([...ta].sort().join('|') !== [...tb].sort().join('|')) out.push({ request, kind: 'type', path: p, ref: [...ta].join('|'), ours: [...tb].join('|') });
  }
  return out;
}

/** Sends `req` to each socket (in turn, so neither answer depends on the other's timing). */
export async function ask(req: ApiRequest, refSock: string, oursSock: string): Promise<{ ref: ApiResponse; ours: ApiResponse }> {
  const send = (sock: string) => request(sock, req.method, req.url, req.body !== undefined ? { body: req.body } : {});
  return { ref: await send(refSock), ours: await send(oursSock) };
}
