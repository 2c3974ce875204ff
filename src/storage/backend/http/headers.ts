// The headers every backend request carries (nydusd-runtime.md 1.6, 7.1): `User-Agent: nydusd/1.0.0` and one header per
// `NYDUS_HEADER_<Name>=<value>` environment variable, token requests included. A variable may override the User-Agent.
// Invalid names or values are skipped, as the reference skips them.

export const USER_AGENT = 'nydusd/1.0.0';
const ENV_PREFIX = 'NYDUS_HEADER_';
/** RFC 9110 token characters */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** visible characters, spaces and tabs; no CR, LF or NUL */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** The extra headers, lower-case names (undici's form), from `env` (default: this process's). */
export function defaultHeaders(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = { 'user-agent': USER_AGENT };
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith(ENV_PREFIX) || v === undefined) continue;
    const name = k.slice(ENV_PREFIX.length);
    if (!HEADER_NAME.test(name) || !HEADER_VALUE.test(v)) continue;
    out[name.toLowerCase()] = v;
  }
  return out;
}
