// Lists a directory of a RafsFs the way the kernel does: READDIR(PLUS) replies of `size` bytes, each continuing at
// the cookie of the last entry of the previous one, decoded back from the reply bytes.
import { decodeDirents, DirentWriter, type DecodedDirent } from '../../../src/fuse/protocol.js';
import type { RafsFs } from '../../../src/rafs/fs.js';

/** One reply: the entries after cookie `offset`. */
export async function listPage(fs: RafsFs, node: bigint, offset: bigint, plus: boolean, size = 4096): Promise<DecodedDirent[]> {
  const w = new DirentWriter(size, plus);
  await fs.readdirInto(node, 0n, offset, w);
  return decodeDirents(w.finish(), plus);
}

/** The whole listing, page by page; also returns how many replies it took. */
export async function listAll(fs: RafsFs, node: bigint, plus: boolean, size = 4096): Promise<{ entries: DecodedDirent[]; pages: number }> {
  const entries: DecodedDirent[] = [];
  let pages = 0;
  for (let offset = 0n; ; ) {
    const page = await listPage(fs, node, offset, plus, size);
    pages++;
    if (page.length === 0) return { entries, pages };
    entries.push(...page);
    offset = page[page.length - 1]!.off;
  }
}
