//! nydus-native: the Node-API addon behind src/native/index.ts.

// Every export is an `unsafe extern "C"` Node-API callback; their contract is Node-API's own.
#![allow(clippy::missing_safety_doc)]

mod aligned;
mod codec;
mod hash;
mod napi;
mod reader;
mod sys;
mod work;

use napi::{napi_callback, napi_env, napi_value};

const EXPORTS: &[(&[u8], napi_callback)] = &[
    (b"lz4DecompressInto\0", codec::lz4_decompress_into),
    (b"lz4Compress\0", codec::lz4_compress),
    (b"zstdDecompressInto\0", codec::zstd_decompress_into),
    (b"zstdCompress\0", codec::zstd_compress),
    (b"decompressAsync\0", work::decompress_async),
    (b"pwritevAsync\0", work::pwritev_async),
    (b"alignedBuffer\0", aligned::aligned_buffer),
    (b"discardPages\0", aligned::discard_pages),
    (b"trimMalloc\0", aligned::trim_malloc),
    (b"blake3\0", hash::blake3),
    (b"crc32c\0", hash::crc32c),
    (b"mount\0", sys::mount),
    (b"umount2\0", sys::umount2),
    (b"openFuseClone\0", sys::open_fuse_clone),
    (b"readFd\0", sys::read_fd),
    (b"startFuseReader\0", reader::start_fuse_reader),
    (b"writeFd\0", sys::write_fd),
    (b"sendFds\0", sys::send_fds),
    (b"recvFds\0", sys::recv_fds),
    (b"socketpair\0", sys::socketpair),
    (b"exit\0", sys::exit_now),
];

/// Called by Node for every environment (main thread and each worker) that loads the addon.
#[no_mangle]
pub unsafe extern "C" fn napi_register_module_v1(env: napi_env, exports: napi_value) -> napi_value {
    napi::call(env, || {
        for (name, f) in EXPORTS {
            napi::export(env, exports, name, *f)?;
        }
        Ok(exports)
    })
}
