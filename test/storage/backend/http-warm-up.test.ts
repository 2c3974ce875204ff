// undici warmed up ahead of a shared daemon's first mount (http/undici.ts): one exchange with a throwaway server of
// the process, which is gone afterwards; the requests after it are served as before.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { Pool, warmUp } from '../../../src/storage/backend/http/undici.js';

const servers = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap' || r === 'TCPSocketWrap').length;

describe('HTTP client warm-up', () => {
  it('leaves no server or connection behind, and requests after it get their answers', async () => {
    const before = servers();
    await warmUp();
    await warmUp();
    // handles leave the list a turn of the loop after they are closed
    for (let i = 0; i < 100 && servers() !== before; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(servers(), before, 'the throwaway server is closed');
    const server = http.createServer((req, res) => res.end(`answer to ${req.url}`));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      const res = await pool.request({ method: 'GET', path: '/x' });
      assert.equal(res.statusCode, 200);
      assert.equal(await res.body.text(), 'answer to /x');
    } finally {
      await pool.close();
      await new Promise((r) => server.close(r));
    }
  });
});
