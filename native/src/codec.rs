//! lz4 block and zstd frame codecs over the system liblz4/libzstd.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};

use crate::napi::{self, fail, napi_callback_info, napi_env, napi_value, Res};

extern "C" {
    fn LZ4_decompress_safe(src: *const c_char, dst: *mut c_char, compressed_size: c_int, dst_capacity: c_int) -> c_int;
    fn LZ4_compress_default(src: *const c_char, dst: *mut c_char, src_size: c_int, dst_capacity: c_int) -> c_int;
    fn LZ4_compressBound(input_size: c_int) -> c_int;
}

#[repr(C)]
struct ZstdCtx {
    _private: [u8; 0],
}

extern "C" {
    fn ZSTD_createDCtx() -> *mut ZstdCtx;
    fn ZSTD_freeDCtx(dctx: *mut ZstdCtx) -> usize;
    fn ZSTD_decompressDCtx(dctx: *mut ZstdCtx, dst: *mut c_void, dst_cap: usize, src: *const c_void, src_size: usize) -> usize;
    fn ZSTD_createCCtx() -> *mut ZstdCtx;
    fn ZSTD_freeCCtx(cctx: *mut ZstdCtx) -> usize;
    fn ZSTD_compressCCtx(
        cctx: *mut ZstdCtx,
        dst: *mut c_void,
        dst_cap: usize,
        src: *const c_void,
        src_size: usize,
        level: c_int,
    ) -> usize;
    fn ZSTD_compressBound(src_size: usize) -> usize;
    fn ZSTD_isError(code: usize) -> c_uint;
    fn ZSTD_getErrorName(code: usize) -> *const c_char;
    fn ZSTD_minCLevel() -> c_int;
    fn ZSTD_maxCLevel() -> c_int;
}

/// liblz4's API takes `int` sizes.
const LZ4_MAX: usize = 0x7E00_0000; // LZ4_MAX_INPUT_SIZE

fn zstd_error(code: usize) -> String {
    // SAFETY: ZSTD_getErrorName always returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(ZSTD_getErrorName(code)).to_string_lossy().into_owned() }
}

/// One zstd context per thread (main thread and each worker), created on first use: creating a
/// DCtx costs more than decoding a small chunk.
struct Ctx {
    raw: *mut ZstdCtx,
    free: unsafe extern "C" fn(*mut ZstdCtx) -> usize,
}

impl Drop for Ctx {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            unsafe { (self.free)(self.raw) };
        }
    }
}

thread_local! {
    static DCTX: RefCell<Option<Ctx>> = const { RefCell::new(None) };
    static CCTX: RefCell<Option<Ctx>> = const { RefCell::new(None) };
}

fn with_ctx<T>(
    slot: &'static std::thread::LocalKey<RefCell<Option<Ctx>>>,
    create: unsafe extern "C" fn() -> *mut ZstdCtx,
    free: unsafe extern "C" fn(*mut ZstdCtx) -> usize,
    f: impl FnOnce(*mut ZstdCtx) -> Res<T>,
) -> Res<T> {
    slot.with(|cell| {
        let mut guard = cell.borrow_mut();
        if guard.is_none() {
            let raw = unsafe { create() };
            if raw.is_null() {
                return fail("zstd: cannot allocate a context");
            }
            *guard = Some(Ctx { raw, free });
        }
        f(guard.as_ref().map(|c| c.raw).unwrap_or(std::ptr::null_mut()))
    })
}

/// Compressor numbers as stored in RAFS (spec 1.1); gzip stays in JS (node:zlib).
pub const ALGO_LZ4: u32 = 1;
pub const ALGO_ZSTD: u32 = 3;

/// Decodes `src` into `dst`, returning the bytes written. Runs on any thread: it touches only the two
/// buffers and this thread's own zstd context.
pub unsafe fn decode(algo: u32, src: napi::Bytes, dst: napi::Bytes) -> Result<usize, String> {
    match algo {
        ALGO_LZ4 => {
            if src.len > LZ4_MAX || dst.len > LZ4_MAX {
                return Err(format!("lz4: buffers larger than {LZ4_MAX} bytes are not supported"));
            }
            if src.len == 0 {
                return Err("lz4: empty input is not a valid lz4 block".into());
            }
            let n = LZ4_decompress_safe(src.ptr() as _, dst.ptr() as _, src.len as c_int, dst.len as c_int);
            if n < 0 {
                return Err(format!(
                    "lz4: corrupt input, or it decodes to more than the {} byte destination ({} bytes of input)",
                    dst.len, src.len
                ));
            }
            Ok(n as usize)
        }
        ALGO_ZSTD => {
            if src.len == 0 {
                // libzstd accepts zero frames as valid empty output; a chunk is never that.
                return Err("zstd: empty input is not a zstd frame".into());
            }
            let n = with_ctx(&DCTX, ZSTD_createDCtx, ZSTD_freeDCtx, |ctx| {
                Ok(ZSTD_decompressDCtx(ctx, dst.ptr() as _, dst.len, src.ptr() as _, src.len))
            })
            .map_err(|_| "zstd: cannot allocate a context".to_string())?;
            if ZSTD_isError(n) != 0 {
                return Err(format!("zstd: {} ({} bytes of input, {} byte destination)", zstd_error(n), src.len, dst.len));
            }
            Ok(n)
        }
        other => Err(format!("compressor {other} cannot be decoded natively")),
    }
}

/// lz4DecompressInto(src, dst) -> bytes written
pub unsafe extern "C" fn lz4_decompress_into(env: napi_env, info: napi_callback_info) -> napi_value {
    napi::call(env, || {
        let a = napi::args::<2>(env, info)?;
        let src = a.bytes(0, "src")?;
        let dst = a.bytes(1, "dst")?;
        match decode(ALGO_LZ4, src, dst) {
            Ok(n) => napi::number(env, n as f64),
            Err(m) => fail(m),
        }
    })
}

/// lz4Compress(src) -> Buffer (a raw lz4 block, no size prefix)
pub unsafe extern "C" fn lz4_compress(env: napi_env, info: napi_callback_info) -> napi_value {
    napi::call(env, || {
        let a = napi::args::<1>(env, info)?;
        let src = a.bytes(0, "src")?;
        if src.len > LZ4_MAX {
            return fail(format!("lz4: input of {} bytes exceeds the lz4 limit of {LZ4_MAX}", src.len));
        }
        let bound = LZ4_compressBound(src.len as c_int);
        let mut out = vec![0u8; bound.max(1) as usize];
        let n = LZ4_compress_default(src.ptr() as _, out.as_mut_ptr() as _, src.len as c_int, bound);
        if n <= 0 {
            return fail(format!("lz4: compression of {} bytes failed", src.len));
        }
        napi::buffer_copy(env, &out[..n as usize])
    })
}

/// zstdDecompressInto(src, dst) -> bytes written
pub unsafe extern "C" fn zstd_decompress_into(env: napi_env, info: napi_callback_info) -> napi_value {
    napi::call(env, || {
        let a = napi::args::<2>(env, info)?;
        let src = a.bytes(0, "src")?;
        let dst = a.bytes(1, "dst")?;
        match decode(ALGO_ZSTD, src, dst) {
            Ok(n) => napi::number(env, n as f64),
            Err(m) => fail(m),
        }
    })
}

/// zstdCompress(src, level) -> Buffer (one standard zstd frame)
pub unsafe extern "C" fn zstd_compress(env: napi_env, info: napi_callback_info) -> napi_value {
    napi::call(env, || {
        let a = napi::args::<2>(env, info)?;
        let src = a.bytes(0, "src")?;
        let level = a.int_or(1, "level", ZSTD_minCLevel() as f64, ZSTD_maxCLevel() as f64, 3.0)? as c_int;
        let bound = ZSTD_compressBound(src.len);
        if ZSTD_isError(bound) != 0 {
            return fail(format!("zstd: input of {} bytes is too large", src.len));
        }
        let mut out = vec![0u8; bound];
        let n = with_ctx(&CCTX, ZSTD_createCCtx, ZSTD_freeCCtx, |ctx| {
            Ok(ZSTD_compressCCtx(ctx, out.as_mut_ptr() as _, out.len(), src.ptr() as _, src.len, level))
        })?;
        if ZSTD_isError(n) != 0 {
            return fail(format!("zstd: compression failed: {}", zstd_error(n)));
        }
        napi::buffer_copy(env, &out[..n])
    })
}
