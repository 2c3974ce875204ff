// The JSON forms of the OpenAPI documents (api/vN.parsed.json) that the daemon reads at start instead of parsing the
// YAML (src/api/documents.ts): each must be the parse of its document's current text, and one that is not (stale)
// must be ignored in favour of the YAML.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { API_DOCUMENTS, loadApiRoutes, parseApiDocument, parsedDocument, parsedPathOf } from '../../src/api/documents.js';
import { projectRoot } from '../helpers/paths.js';

const API = path.join(projectRoot, 'api');

test('each api/vN.parsed.json is the parse of its YAML document as it is now (else run scripts/api-json.sh)', () => {
  for (const name of API_DOCUMENTS) {
    const committed: unknown = JSON.parse(readFileSync(parsedPathOf(API, name), 'utf8'));
    assert.deepEqual(committed, parsedDocument(readFileSync(path.join(API, name), 'utf8')), `api/${name}: run scripts/api-json.sh`);
  }
});

test('the routes come from the JSON form made from the same text, and from the YAML when the JSON form is stale', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nydus-api-docs-'));
  try {
    for (const name of API_DOCUMENTS) copyFileSync(path.join(API, name), path.join(dir, name));
    const fromYaml = API_DOCUMENTS.flatMap((name) => parseApiDocument(readFileSync(path.join(API, name), 'utf8'), name));
    assert.ok(fromYaml.some((r) => r.operationId === 'describeDaemon'));
    // no JSON forms: the YAML
    assert.deepEqual(loadApiRoutes(dir), fromYaml);
    // a JSON form of the same text whose document was altered: it is what is read (the digest matches)
    const v1 = readFileSync(path.join(API, 'v1.yaml'), 'utf8');
    const altered = parsedDocument(v1);
    const doc = altered.document as { paths: Record<string, Record<string, { operationId: string }>> };
    doc.paths['/api/v1/daemon']!.get!.operationId = 'describeDaemonRenamed';
    writeFileSync(parsedPathOf(dir, 'v1.yaml'), JSON.stringify(altered));
    assert.ok(loadApiRoutes(dir).some((r) => r.operationId === 'describeDaemonRenamed'));
    // the YAML changes afterwards: the JSON form is stale and ignored
    writeFileSync(path.join(dir, 'v1.yaml'), `${v1}\n# edited\n`);
    assert.deepEqual(loadApiRoutes(dir), fromYaml);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
