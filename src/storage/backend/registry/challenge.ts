// Parsing `WWW-Authenticate` (RFC 9110 11.6.1; nydusd-runtime.md 7.2 step 4): the registry's 401 says which scheme it
// wants, Bearer with the token service's realm, service and scope, or Basic.

export interface Challenge {
  /** lower-case scheme: 'bearer', 'basic', or whatever else the server named */
  scheme: string;
  /** auth-params, lower-case names */
  params: Record<string, string>;
}

/**
 * The first challenge of a WWW-Authenticate value (registries send one). Quoted values may contain commas and
 * backslash escapes. Undefined when the value names no scheme.
 */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const s = header.trim();
  const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*/.exec(s);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  const params: Record<string, string> = {};
  let i = m[0].length;
  while (i < s.length) {
    const pm = /^\s*,?\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*/.exec(s.slice(i));
    if (!pm) break;
    i += pm[0].length;
    const name = pm[1]!.toLowerCase();
    let value = '';
    if (s[i] === '"') {
      i++;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        value += s[i];
        i++;
      }
      i++; // closing quote
    } else {
      const vm = /^[^,\s]*/.exec(s.slice(i))!;
      value = vm[0];
      i += vm[0].length;
    }
    // a second challenge starts with a scheme name not followed by '=': stop at the first one
    if (!(name in params)) params[name] = value;
  }
  return { scheme, params };
}

/** The Bearer parameters a token request needs; undefined when realm or service is missing (7.2: then the 401 stands). */
export function bearerParams(c: Challenge): { realm: string; service: string; scope: string } | undefined {
  const { realm, service, scope } = c.params;
  if (c.scheme !== 'bearer' || !realm || !service) return undefined;
  return { realm, service, scope: scope ?? '' };
}
