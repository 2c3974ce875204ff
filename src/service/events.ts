// The daemon's error ring buffer behind GET /api/v1/daemon/events (spec nydusd-runtime.md 3.5.3): final backend
// read failures, each as `<IMF-fixdate> - <error text>`, the oldest evicted once more than 500 entries or more than
// 51,200 bytes are held. The totals count every error ever recorded.

export const MAX_EVENT_ERRORS = 500;
export const MAX_EVENT_BYTES = 51200;

export interface EventsView {
  max_errors: number;
  total_errors: number;
  max_size: number;
  total_size: number;
  errors: string[];
}

export class ErrorEvents {
  private readonly entries: string[] = [];
  private heldBytes = 0;
  private totalErrors = 0;
  private totalSize = 0;

  record(text: string, at = new Date()): void {
    const entry = `${at.toUTCString()} - ${text}`;
    const size = Buffer.byteLength(entry);
    this.totalErrors++;
    this.totalSize += size;
    this.entries.push(entry);
    this.heldBytes += size;
    while (this.entries.length > MAX_EVENT_ERRORS || (this.heldBytes > MAX_EVENT_BYTES && this.entries.length > 0)) {
      this.heldBytes -= Buffer.byteLength(this.entries.shift()!);
    }
  }

  view(): EventsView {
    return {
      max_errors: MAX_EVENT_ERRORS,
      total_errors: this.totalErrors,
      max_size: MAX_EVENT_BYTES,
      total_size: this.totalSize,
      errors: [...this.entries],
    };
  }
}
