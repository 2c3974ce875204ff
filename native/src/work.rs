#![allow(non_camel_case_types)]

//! Chunk decompression on the libuv thread pool, so that a second core decodes while the JS thread
//! serves other FUSE requests. The source and destination Buffers are pinned with references until the
//! work completes; the work itself touches only their memory.

use std::ffi::{c_char, c_void};
use std::ptr;

use crate::codec;
use crate::napi::{self, fail, napi_callback_info, napi_env, napi_value, Bytes, Res};

type napi_status = i32;
type napi_async_work = *mut c_void;
type napi_deferred = *mut c_void;
type napi_ref = *mut c_void;
type Execute = unsafe extern "C" fn(env: napi_env, data: *mut c_void);
type Complete = unsafe extern "C" fn(env: napi_env, status: napi_status, data: *mut c_void);

extern "C" {
    fn napi_create_async_work(
        env: napi_env,
        async_resource: napi_value,
        async_resource_name: napi_value,
        execute: Execute,
        complete: Complete,
        data: *mut c_void,
        result: *mut napi_async_work,
    ) -> napi_status;
    fn napi_queue_async_work(env: napi_env, work: napi_async_work) -> napi_status;
    fn napi_delete_async_work(env: napi_env, work: napi_async_work) -> napi_status;
    fn napi_create_promise(env: napi_env, deferred: *mut napi_deferred, promise: *mut napi_value) -> napi_status;
    fn napi_resolve_deferred(env: napi_env, deferred: napi_deferred, resolution: napi_value) -> napi_status;
    fn napi_reject_deferred(env: napi_env, deferred: napi_deferred, rejection: napi_value) -> napi_status;
    fn napi_create_reference(env: napi_env, value: napi_value, initial_refcount: u32, result: *mut napi_ref) -> napi_status;
    fn napi_delete_reference(env: napi_env, r: napi_ref) -> napi_status;
    fn napi_create_error(env: napi_env, code: napi_value, msg: napi_value, result: *mut napi_value) -> napi_status;
    fn napi_create_string_utf8(env: napi_env, s: *const c_char, length: usize, result: *mut napi_value) -> napi_status;
}

struct Job {
    algo: u32,
    src: Bytes,
    dst: Bytes,
    src_ref: napi_ref,
    dst_ref: napi_ref,
    deferred: napi_deferred,
    work: napi_async_work,
    result: Result<usize, String>,
}

fn ok(status: napi_status, what: &'static str) -> Res<()> {
    if status == 0 {
        Ok(())
    } else {
        fail(format!("internal Node-API failure in {what}"))
    }
}

unsafe extern "C" fn execute(_env: napi_env, data: *mut c_void) {
    let job = &mut *(data as *mut Job);
    job.result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| codec::decode(job.algo, job.src, job.dst))) {
        Ok(r) => r,
        Err(_) => Err("nydus-native internal error while decoding".into()),
    };
}

unsafe extern "C" fn complete(env: napi_env, _status: napi_status, data: *mut c_void) {
    let job = Box::from_raw(data as *mut Job);
    napi_delete_reference(env, job.src_ref);
    napi_delete_reference(env, job.dst_ref);
    napi_delete_async_work(env, job.work);
    match job.result {
        Ok(n) => {
            if let Ok(v) = napi::number(env, n as f64) {
                napi_resolve_deferred(env, job.deferred, v);
            }
        }
        Err(m) => {
            let mut msg = ptr::null_mut();
            let mut err = ptr::null_mut();
            napi_create_string_utf8(env, m.as_ptr() as *const c_char, m.len(), &mut msg);
            napi_create_error(env, ptr::null_mut(), msg, &mut err);
            napi_reject_deferred(env, job.deferred, err);
        }
    }
}

/// decompressAsync(algo, src, dst) -> Promise<bytes written>; algo is the RAFS compressor number (1 lz4, 3 zstd).
/// The caller must not touch `dst` until the promise settles.
pub unsafe extern "C" fn decompress_async(env: napi_env, info: napi_callback_info) -> napi_value {
    napi::call(env, || {
        let a = napi::args::<3>(env, info)?;
        let algo = a.int(0, "algo", 0.0, u32::MAX as f64)? as u32;
        if algo != codec::ALGO_LZ4 && algo != codec::ALGO_ZSTD {
            return fail(format!("compressor {algo} cannot be decoded natively"));
        }
        let src = a.bytes(1, "src")?;
        let dst = a.bytes(2, "dst")?;
        let mut job = Box::new(Job {
            algo,
            src,
            dst,
            src_ref: ptr::null_mut(),
            dst_ref: ptr::null_mut(),
            deferred: ptr::null_mut(),
            work: ptr::null_mut(),
            result: Ok(0),
        });
        ok(napi_create_reference(env, a.v[1], 1, &mut job.src_ref), "napi_create_reference")?;
        ok(napi_create_reference(env, a.v[2], 1, &mut job.dst_ref), "napi_create_reference")?;
        let mut promise = ptr::null_mut();
        ok(napi_create_promise(env, &mut job.deferred, &mut promise), "napi_create_promise")?;
        let name = "nydus:decompress";
        let mut name_v = ptr::null_mut();
        ok(napi_create_string_utf8(env, name.as_ptr() as *const c_char, name.len(), &mut name_v), "napi_create_string_utf8")?;
        let raw = Box::into_raw(job);
        let mut work = ptr::null_mut();
        if let Err(e) = ok(
            napi_create_async_work(env, ptr::null_mut(), name_v, execute, complete, raw as *mut c_void, &mut work),
            "napi_create_async_work",
        ) {
            let job = Box::from_raw(raw);
            napi_delete_reference(env, job.src_ref);
            napi_delete_reference(env, job.dst_ref);
            return Err(e);
        }
        (*raw).work = work;
        ok(napi_queue_async_work(env, work), "napi_queue_async_work")?;
        Ok(promise)
    })
}
