// The base of every backend decorator (timeout, retry, metering, failure reporting): a decorator changes how reads go,
// and passes everything else (size, close, live settings) through to the backend it wraps, whatever that is.
import type { BlobBackend, ReadKind } from './blob-backend.js';

export abstract class BackendDecorator implements BlobBackend {
  constructor(protected readonly inner: BlobBackend) {}

  get kind(): string {
    return this.inner.kind;
  }

  get abandoned(): number {
    return this.inner.abandoned ?? 0;
  }

  abstract read(blobId: string, offset: number, length: number, signal?: AbortSignal, into?: Buffer, kind?: ReadKind, bypassProxy?: boolean): Promise<Buffer>;

  size(blobId: string): Promise<number> {
    return this.inner.size(blobId);
  }

  setCredential(value: string): void {
    this.inner.setCredential?.(value);
  }

  setProxyUrl(url: string): void {
    this.inner.setProxyUrl?.(url);
  }

  setSchedulerEndpoint(endpoint: string): void {
    this.inner.setSchedulerEndpoint?.(endpoint);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
