#!/usr/bin/env bash
# Writes api/v1.parsed.json and api/v2.parsed.json, the JSON forms of the OpenAPI documents the daemon reads at start
# (src/api/documents.ts), from api/*.yaml. Run it after editing a document; test/api/documents.test.ts fails until then.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json
node --input-type=module -e "(await import('./dist/src/api/documents.js')).writeParsedDocuments()"
