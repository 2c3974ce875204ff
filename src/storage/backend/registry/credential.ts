// The registry credential (nydusd-runtime.md 2.4 `auth`, 1.6 `IMAGE_PULL_AUTH`, 2.6 `registry_auth`): base64 of
// `user:password`, checked when it arrives so a bad value is one clear error at creation, not a 401 on every read.
// Messages never include the value.
import { NetworkError } from '../errors.js';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The credential as it will be sent (trimmed), undefined when absent or empty. Throws ND_ERR_CONFIG when it does not
 * decode to UTF-8 text containing ':'. `what` names its source in the message ("registry.auth", "IMAGE_PULL_AUTH").
 */
export function checkCredential(raw: string | null | undefined, what: string): string | undefined {
  const v = raw?.trim();
  if (!v) return undefined;
  if (!BASE64.test(v) || v.length % 4 === 1) throw new NetworkError(`${what} is not base64 (it must be base64 of user:password)`, 'ND_ERR_CONFIG');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(v, 'base64'));
  } catch {
    throw new NetworkError(`${what} does not decode to UTF-8 text (it must be base64 of user:password)`, 'ND_ERR_CONFIG');
  }
  if (!text.includes(':')) throw new NetworkError(`${what} decodes to text without ':' (it must be base64 of user:password)`, 'ND_ERR_CONFIG');
  return v;
}
