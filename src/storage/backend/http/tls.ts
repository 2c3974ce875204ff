// TLS trust for network backends (nydusd-runtime.md 2.4 `ca_cert_files`, 7.1): the default roots plus the configured PEM
// files. A file that cannot be read or holds no valid certificate fails backend creation, naming the file: a typo in a
// CA path must not surface later as "certificate refused" on every read.
import crypto from 'node:crypto';
import fs from 'node:fs';
import tls from 'node:tls';
import { NetworkError } from '../errors.js';

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates of one PEM file, each checked to parse. */
function loadCaFile(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new NetworkError(`ca_cert_files: cannot read ${file}: ${(err as Error).message}`, 'ND_ERR_CONFIG', { cause: err });
  }
  const blocks = text.match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) throw new NetworkError(`ca_cert_files: ${file} holds no PEM certificate`, 'ND_ERR_CONFIG');
  for (const [i, pem] of blocks.entries()) {
    try {
      new crypto.X509Certificate(pem);
    } catch (err) {
      throw new NetworkError(`ca_cert_files: certificate ${i + 1} of ${file} is invalid: ${(err as Error).message}`, 'ND_ERR_CONFIG', { cause: err });
    }
  }
  return blocks;
}

/**
 * The TLS options of a backend's connections. Without CA files the default roots apply; with them, those roots plus
 * the files' certificates (passing `ca` replaces the defaults, so they are listed too). Node 20's default roots are its
 * bundled Mozilla store (`tls.rootCertificates`).
 */
export function tlsOptions(opts: { caCertFiles: readonly string[]; skipVerify: boolean }): { ca?: string[]; rejectUnauthorized: boolean } {
  const extra = opts.caCertFiles.flatMap(loadCaFile);
  return {
    rejectUnauthorized: !opts.skipVerify,
    ...(extra.length ? { ca: [...tls.rootCertificates, ...extra] } : {}),
  };
}
