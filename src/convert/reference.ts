// Image references as the reference nydusify takes them (docker's rules: `host[:port]/path[:tag][@digest]`,
// no host means docker.io and a one-word path means library/<name>), plus skopeo's `oci:DIR[:TAG]` for an OCI
// image layout directory (an extension of nydus-ts: offline conversion).

export type ParsedReference =
  | { kind: 'registry'; host: string; repository: string; tag?: string; digest?: string; text: string }
  | { kind: 'oci-layout'; dir: string; tag: string; text: string };

const DOCKER_HUB = 'docker.io';
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

export function parseReference(text: string): ParsedReference {
  if (text.startsWith('oci:')) {
    const rest = text.slice(4);
    // the tag is what follows the last ':' unless that ':' is part of the directory path
    const colon = rest.lastIndexOf(':');
    const dir = colon > 0 && !rest.slice(colon + 1).includes('/') ? rest.slice(0, colon) : rest;
    const tag = dir === rest ? 'latest' : rest.slice(colon + 1);
    if (dir === '') throw new Error(`invalid reference '${text}': no directory after oci:`);
    if (!TAG.test(tag)) throw new Error(`invalid reference '${text}': '${tag}' is not a valid tag`);
    return { kind: 'oci-layout', dir, tag, text };
  }
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new Error(`invalid reference '${text}': '${digest}' is not a sha256 digest`);
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new Error(`invalid reference '${text}': '${tag}' is not a valid tag`);
  }
  const parts = rest.split('/');
  let host = DOCKER_HUB;
  if (parts.length > 1 && (parts[0]!.includes('.') || parts[0]!.includes(':') || parts[0] === 'localhost')) host = parts.shift()!;
  if (host === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  for (const p of parts) {
    if (!COMPONENT.test(p)) throw new Error(`invalid reference '${text}': '${p}' is not a valid repository name component`);
  }
  if (!tag && !digest) tag = 'latest';
  return { kind: 'registry', host, repository: parts.join('/'), ...(tag ? { tag } : {}), ...(digest ? { digest } : {}), text };
}

/** The tag or digest a registry reference names (the digest wins, as docker's does). */
export function referenceRef(r: ParsedReference): string {
  return r.kind === 'oci-layout' ? r.tag : (r.digest ?? r.tag!);
}
