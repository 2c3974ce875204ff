// Keys of nydus v2.4's DaemonInfo config serialization (spec nydusd-runtime.md 3.5.1) that the reference 2.2.0 on
// this machine does not write: our target is v2.4 (DECISIONS.md 1), whose nydusctl deserializes them strictly.
// localfs.timeout is ours (README, the localfs read timeout).
const V24_CONFIG_KEY =
  /^backend_collection\.[^.]+\.config\.(external_backends|overlay|cache\.prefetch\.stream_prefetch|rafs\.prefetch\.stream_prefetch|cache\.filecache\.(enable_encryption|enable_convergent_encryption|encryption_key)|backend\.localfs\.timeout)$/;

export const isV24ConfigKey = (keyPath: string): boolean => V24_CONFIG_KEY.test(keyPath);
