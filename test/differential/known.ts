// Bookkeeping for KNOWN-DIFFERENCES tables: a difference is explained by the first entry whose predicate holds;
// the test fails on any difference no entry explains, and on an entry that explained nothing over the whole run
// (a difference that went away must leave the table too, so the table stays the truth).
import assert from 'node:assert/strict';

export interface Known<D> {
  /** what differs, for the failure message and the reader */
  what: string;
  /** why the difference is intended (or whose it is to fix) */
  reason: string;
  matches: (d: D) => boolean;
}

export class KnownTable<D> {
  private readonly used = new Set<Known<D>>();

  constructor(readonly entries: Known<D>[]) {}

  /** The differences no entry explains. */
  unexplained(diffs: D[]): D[] {
    return diffs.filter((d) => {
      const k = this.entries.find((e) => e.matches(d));
      if (k) this.used.add(k);
      return !k;
    });
  }

  /** Fails when an entry explained nothing (call once every comparison ran). */
  assertAllUsed(): void {
    const stale = this.entries.filter((e) => !this.used.has(e)).map((e) => e.what);
    assert.deepEqual(stale, [], 'KNOWN-DIFFERENCES entries that no longer match any difference: remove them');
  }
}
