#![allow(non_camel_case_types)]

//! Jobs on the libuv thread pool, so that a second core works while the JS thread serves other FUSE
//! requests: chunk decompression, and the blob cache's gathered writes. The Buffers a job uses are pinned
//! with references until it completes; the job itself touches only their memory.

use std::ffi::{c_char, c_void};
use std::ptr;

use crate::codec;
use crate::sys;
use crate::napi::{
    self, fail, napi_callback_info, napi_create_error, napi_create_reference, napi_create_string_utf8, napi_delete_reference, napi_env,
    napi_ref, napi_status, napi_value, Bytes, Res,
};

type napi_async_work = *mut c_void;
type napi_deferred = *mut c_void;
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
}

enum Task {
    Decode { algo: u32, src: Bytes, dst: Bytes },
    /// pwritev(2) of `bufs` at `offset`, continued after short writes
    Write { fd: i32, bufs: Vec<Bytes>, offset: i64, background: bool },
}

/// Why a job failed: a message, and the errno name when a syscall failed (it becomes the Error's `code`).
struct JobError {
    code: Option<&'static str>,
    message: String,
}

impl From<String> for JobError {
    fn from(message: String) -> Self {
        JobError { code: None, message }
    }
}

struct Job {
    task: Task,
    /// the JS values holding the job's memory, released on completion
    refs: Vec<napi_ref>,
    deferred: napi_deferred,
    work: napi_async_work,
    result: Result<usize, JobError>,
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
    let task = &job.task;
    let run = || match task {
        Task::Decode { algo, src, dst } => codec::decode(*algo, *src, *dst).map_err(JobError::from),
        Task::Write { fd, bufs, offset, background } => {
            let previous = if *background { set_io_priority(IOPRIO_IDLE) } else { None };
            let r = write_all(*fd, bufs, *offset);
            if let Some(p) = previous {
                set_io_priority(p);
            }
            r
        }
    };
    job.result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(r) => r,
        Err(_) => Err(JobError::from("nydus-native internal error in a pool job".to_string())),
    };
}

/// ioprio value of the idle class: served only when the disk has nothing else to do (mq-deadline, bfq).
const IOPRIO_IDLE: libc::c_long = 3 << 13;
const IOPRIO_WHO_PROCESS: libc::c_long = 1;

/// Sets this thread's I/O priority (direct I/O carries the submitting thread's); returns the previous one,
/// or None when the kernel refuses (then nothing changed).
unsafe fn set_io_priority(prio: libc::c_long) -> Option<libc::c_long> {
    let previous = libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0 as libc::c_long);
    if previous < 0 || libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0 as libc::c_long, prio) < 0 {
        return None;
    }
    Some(previous)
}

/// Writes every byte of `bufs` from `offset`, resuming after short writes; returns the total written.
unsafe fn write_all(fd: i32, bufs: &[Bytes], offset: i64) -> Result<usize, JobError> {
    let mut iov: Vec<libc::iovec> = bufs.iter().map(|b| libc::iovec { iov_base: b.ptr() as *mut c_void, iov_len: b.len }).collect();
    let total: usize = bufs.iter().map(|b| b.len).sum();
    let mut done = 0usize;
    let mut first = 0usize;
    while done < total {
        // IOV_MAX (1024) bounds one call; the rest goes in the next round
        let count = (iov.len() - first).min(1024);
        let n = libc::pwritev(fd, iov.as_ptr().add(first), count as i32, offset + done as i64);
        if n < 0 {
            let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
            if e == libc::EINTR {
                continue;
            }
            return Err(JobError { code: Some(sys::errno_name(e)), message: format!("pwritev: {} ({})", sys::strerror(e), sys::errno_name(e)) });
        }
        if n == 0 {
            return Err(JobError { code: Some("EIO"), message: format!("pwritev wrote nothing at offset {}", offset + done as i64) });
        }
        done += n as usize;
        let mut left = n as usize;
        while left > 0 && first < iov.len() {
            let v = &mut iov[first];
            if left >= v.iov_len {
                left -= v.iov_len;
                first += 1;
            } else {
                v.iov_base = (v.iov_base as *mut u8).add(left) as *mut c_void;
                v.iov_len -= left;
                left = 0;
            }
        }
    }
    Ok(done)
}

unsafe extern "C" fn complete(env: napi_env, _status: napi_status, data: *mut c_void) {
    let job = Box::from_raw(data as *mut Job);
    for r in &job.refs {
        napi_delete_reference(env, *r);
    }
    napi_delete_async_work(env, job.work);
    match job.result {
        Ok(n) => {
            if let Ok(v) = napi::number(env, n as f64) {
                napi_resolve_deferred(env, job.deferred, v);
            }
        }
        Err(e) => {
            let mut msg = ptr::null_mut();
            let mut code = ptr::null_mut();
            let mut err = ptr::null_mut();
            napi_create_string_utf8(env, e.message.as_ptr() as *const c_char, e.message.len(), &mut msg);
            if let Some(c) = e.code {
                napi_create_string_utf8(env, c.as_ptr() as *const c_char, c.len(), &mut code);
            }
            napi_create_error(env, code, msg, &mut err);
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
        queue(env, Task::Decode { algo, src, dst }, &[a.v[1], a.v[2]], "nydus:decompress")
    })
}

/// pwritevAsync(fd, buffers, offset, background) -> Promise<bytes written>: all of `buffers`, one after another,
/// from `offset` (short writes are continued); `background` submits them with the idle I/O priority, so that
/// reads someone waits for go first. With an O_DIRECT fd every Buffer must be block-aligned in address
/// and length (alignedBuffer gives such memory). The caller keeps the fd open and the Buffers unchanged until
/// it settles. Failures reject with an Error whose `code` is the errno name.
pub unsafe extern "C" fn pwritev_async(env: napi_env, info: napi_callback_info) -> napi_value {
    napi::call(env, || {
        let a = napi::args::<4>(env, info)?;
        let fd = a.fd(0, "fd")?;
        let bufs = a.bytes_list(1, "buffers", 65536)?;
        let offset = a.int(2, "offset", 0.0, 9007199254740991.0)? as i64;
        let background = a.bool_or(3, "background", false)?;
        // the reference to the array keeps its Buffers alive
        queue(env, Task::Write { fd, bufs, offset, background }, &[a.v[1]], "nydus:pwritev")
    })
}

unsafe fn queue(env: napi_env, task: Task, keep: &[napi_value], name: &str) -> Res<napi_value> {
    let mut job = Box::new(Job { task, refs: Vec::new(), deferred: ptr::null_mut(), work: ptr::null_mut(), result: Ok(0) });
    let release = |job: &Job| {
        for r in &job.refs {
            napi_delete_reference(env, *r);
        }
    };
    for v in keep {
        let mut r = ptr::null_mut();
        if let Err(e) = ok(napi_create_reference(env, *v, 1, &mut r), "napi_create_reference") {
            release(&job);
            return Err(e);
        }
        job.refs.push(r);
    }
    let mut promise = ptr::null_mut();
    let mut name_v = ptr::null_mut();
    let prepared = ok(napi_create_promise(env, &mut job.deferred, &mut promise), "napi_create_promise").and_then(|_| {
        ok(napi_create_string_utf8(env, name.as_ptr() as *const c_char, name.len(), &mut name_v), "napi_create_string_utf8")
    });
    if let Err(e) = prepared {
        release(&job);
        return Err(e);
    }
    let raw = Box::into_raw(job);
    let mut work = ptr::null_mut();
    if let Err(e) = ok(
        napi_create_async_work(env, ptr::null_mut(), name_v, execute, complete, raw as *mut c_void, &mut work),
        "napi_create_async_work",
    ) {
        let job = Box::from_raw(raw);
        release(&job);
        return Err(e);
    }
    (*raw).work = work;
    ok(napi_queue_async_work(env, work), "napi_queue_async_work")?;
    Ok(promise)
}
