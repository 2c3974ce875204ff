#![allow(non_camel_case_types)]

//! Page-aligned Buffers for decoded chunks. The blob cache writes them to its data file with O_DIRECT
//! straight from this memory (no staging copy), which needs the address, the file offset and the length
//! aligned to the device's logical block; 4 KiB covers every device. Recycling is the chunk arena's job
//! (src/storage/chunk-arena.ts), which takes its slabs from here; this memory goes back when V8 collects it.

use std::alloc::{self, Layout};
use std::ffi::c_void;
use std::ptr;

use crate::napi::{self, fail, napi_callback_info, napi_env, napi_finalize, napi_status, napi_value};

pub const ALIGN: usize = 4096;
/// Larger requests are refused: a RAFS chunk is at most 16 MiB.
const MAX_SIZE: usize = 64 << 20;

extern "C" {
    fn napi_create_external_buffer(
        env: napi_env,
        length: usize,
        data: *mut c_void,
        finalize_cb: napi_finalize,
        finalize_hint: *mut c_void,
        result: *mut napi_value,
    ) -> napi_status;
}

fn layout(cap: usize) -> Layout {
    // cap is a non-zero multiple of ALIGN, far below isize::MAX
    Layout::from_size_align(cap, ALIGN).expect("aligned layout")
}

unsafe extern "C" fn free(_env: napi_env, data: *mut c_void, hint: *mut c_void) {
    alloc::dealloc(data as *mut u8, layout(hint as usize));
}

/// alignedBuffer(size) -> Buffer of `size` rounded up to 4 KiB, at a 4 KiB-aligned address. The bytes past
/// `size` are zero (they pad the chunk in the cache file); the first `size` are unspecified.
pub unsafe extern "C" fn aligned_buffer(env: napi_env, info: napi_callback_info) -> napi_value {
    napi::call(env, || {
        let a = napi::args::<1>(env, info)?;
        let size = a.int(0, "size", 0.0, MAX_SIZE as f64)? as usize;
        let cap = (size.max(1) + ALIGN - 1) / ALIGN * ALIGN;
        let p = alloc::alloc(layout(cap));
        if p.is_null() {
            return fail(format!("cannot allocate {cap} bytes"));
        }
        ptr::write_bytes(p.add(size), 0, cap - size);
        let mut out = ptr::null_mut();
        if napi_create_external_buffer(env, cap, p as *mut c_void, free, cap as *mut c_void, &mut out) != 0 {
            alloc::dealloc(p, layout(cap));
            return fail("external Buffers are not available in this runtime");
        }
        Ok(out)
    })
}

/// discardPages(buf): gives the whole 4 KiB pages inside `buf` back to the kernel (madvise MADV_DONTNEED); they read
/// as zeros afterwards and take memory again only when written. The chunk arena calls it on slabs no chunk has used
/// for a while, so that a daemon's memory returns to its idle size after a read (issue 9). Returns the bytes given back.
pub unsafe extern "C" fn discard_pages(env: napi_env, info: napi_callback_info) -> napi_value {
    napi::call(env, || {
        let a = napi::args::<1>(env, info)?;
        let b = a.bytes(0, "buf")?;
        let start = (b.ptr as usize + ALIGN - 1) / ALIGN * ALIGN;
        let end = (b.ptr as usize + b.len) / ALIGN * ALIGN;
        if b.ptr.is_null() || end <= start {
            return napi::int32(env, 0);
        }
        if libc::madvise(start as *mut c_void, end - start, libc::MADV_DONTNEED) != 0 {
            return fail(format!("madvise(MADV_DONTNEED) of {} bytes: {}", end - start, std::io::Error::last_os_error()));
        }
        napi::int32(env, ((end - start) / ALIGN) as i32 * ALIGN as i32)
    })
}

/// trimMalloc(): gives the free memory of every malloc arena back to the kernel (malloc_trim(0)), returns whether
/// any was. The libuv pool's threads each get an arena of their own, and what a burst of decodes and writes freed
/// there stays resident otherwise; the chunk arena calls it with discardPages once a read is over (issue 9).
pub unsafe extern "C" fn trim_malloc(env: napi_env, _info: napi_callback_info) -> napi_value {
    napi::call(env, || napi::int32(env, libc::malloc_trim(0)))
}
