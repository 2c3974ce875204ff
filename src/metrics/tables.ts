// The index tables every nydus metric shares (spec nydusd-runtime.md 8.1): request-size classes, the filesystem's and
// the backend's latency buckets, and the file-operation slots. Arrays are always full length (DECISIONS.md 12: a short
// array crashes nydus-snapshotter).

/** Slots of `block_count_read`, the backend size distributions and both latency distributions. */
export const CLASSES = 8;

/** The file-operation slots of `fop_hits`, `fop_errors` and `fop_cumulative_latency_total`, in the spec's order. */
export const FOPS = [
  'Getattr', 'Readlink', 'Open', 'Release', 'Read', 'Statfs', 'Getxattr', 'Listxattr',
  'Opendir', 'Lookup', 'Readdir', 'Readdirplus', 'Access', 'Forget', 'BatchForget',
] as const;
export type Fop = (typeof FOPS)[number];

export const Fop = Object.fromEntries(FOPS.map((name, i) => [name, i])) as { readonly [K in Fop]: number };

/** Upper bounds (exclusive) of the request-size classes 0-6, in bytes; class 7 is 1 MiB and more. */
export const SIZE_CLASS_LIMITS = [1024, 4096, 16384, 65536, 131072, 524288, 1048576] as const;

/** The size class of a request of `bytes` bytes (0 for 0). */
export function sizeClass(bytes: number): number {
  let i = 0;
  while (i < SIZE_CLASS_LIMITS.length && bytes >= SIZE_CLASS_LIMITS[i]!) i++;
  return i;
}

/** Inclusive upper bounds of the filesystem read-latency buckets 0-6, in whole microseconds; bucket 7 is above 2 s. */
export const FS_LATENCY_LIMITS_US = [200, 1000, 20_000, 50_000, 500_000, 1_000_000, 2_000_000] as const;

/** Inclusive upper bounds of the backend latency buckets 0-6, in whole milliseconds; bucket 7 is above 2 s. */
export const BACKEND_LATENCY_LIMITS_MS = [1, 20, 50, 100, 500, 1000, 2000] as const;

/** The bucket of `value` (whole units) among inclusive upper `limits`; the last bucket holds everything above. */
export function bucket(value: number, limits: readonly number[]): number {
  let i = 0;
  while (i < limits.length && value > limits[i]!) i++;
  return i;
}

export function zeros(n: number): number[] {
  return new Array<number>(n).fill(0);
}
