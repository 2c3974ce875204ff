#![allow(non_camel_case_types)]

//! FUSE reader threads: plain OS threads that block in read(2) on /dev/fuse and hand each request to the JS
//! thread through a thread-safe function. They replace Node worker threads, each of which carried a V8 isolate
//! of its own (about 9.5 MiB resident per reader, BENCHMARKS.md run AA) only to sit in that read.
//!
//! A reader reads into the slots of a ring the caller passes (a Uint8Array of `slots * slotSize` bytes). A slot
//! holding a request is busy until the JS callback for it has returned (the callback copies the request out),
//! so the thread waits for a free slot instead of allocating, and the ring's memory is the only memory it uses.
//! Events reach JS in the order the thread sent them: requests, then at most one of closed/stopped/error, then
//! exited, after which the thread touches neither the ring nor the fd.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::napi::{
    self, fail, napi_callback_info, napi_create_reference, napi_delete_reference, napi_env, napi_finalize, napi_ref, napi_status, napi_value,
    Res,
};
use crate::sys;

type napi_threadsafe_function = *mut c_void;
type CallJs = unsafe extern "C" fn(env: napi_env, js_cb: napi_value, context: *mut c_void, data: *mut c_void);

const NAPI_TSFN_RELEASE: i32 = 0;
const NAPI_TSFN_BLOCKING: i32 = 1;

extern "C" {
    fn napi_create_threadsafe_function(
        env: napi_env,
        func: napi_value,
        async_resource: napi_value,
        async_resource_name: napi_value,
        max_queue_size: usize,
        initial_thread_count: usize,
        thread_finalize_data: *mut c_void,
        thread_finalize_cb: napi_finalize,
        context: *mut c_void,
        call_js_cb: CallJs,
        result: *mut napi_threadsafe_function,
    ) -> napi_status;
    fn napi_call_threadsafe_function(func: napi_threadsafe_function, data: *mut c_void, is_blocking: i32) -> napi_status;
    fn napi_release_threadsafe_function(func: napi_threadsafe_function, mode: i32) -> napi_status;
    fn napi_call_function(
        env: napi_env,
        recv: napi_value,
        func: napi_value,
        argc: usize,
        argv: *const napi_value,
        result: *mut napi_value,
    ) -> napi_status;
}

/// Event kinds as the JS callback receives them (src/native/index.ts FuseReaderEvent).
const EV_REQUEST: i32 = 0;
const EV_CLOSED: i32 = 1;
const EV_STOPPED: i32 = 2;
const EV_ERROR: i32 = 3;
const EV_EXITED: i32 = 4;

enum Event {
    Request { slot: usize, len: usize },
    Closed,
    Stopped,
    Error { errno: i32 },
    Exited,
}

/// What the reader thread and the JS thread share.
struct Shared {
    /// busy[i]: slot i holds a request JS has not taken yet
    busy: Mutex<Vec<bool>>,
    freed: Condvar,
}

/// Kept alive until the thread-safe function is finalized (on the JS thread): the JS values whose memory the
/// thread uses, released there.
struct Keep {
    refs: [napi_ref; 2],
    shared: *const Shared,
}

struct Ring {
    ptr: *mut u8,
    slot_size: usize,
    slots: usize,
}
unsafe impl Send for Ring {}

struct Tsfn(napi_threadsafe_function);
unsafe impl Send for Tsfn {}

struct StopFlag(*const AtomicI32);
unsafe impl Send for StopFlag {}

fn ok(status: napi_status, what: &'static str) -> Res<()> {
    if status == 0 {
        Ok(())
    } else {
        fail(format!("internal Node-API failure in {what}"))
    }
}

unsafe extern "C" fn finalize(env: napi_env, data: *mut c_void, _hint: *mut c_void) {
    let keep = Box::from_raw(data as *mut Keep);
    for r in keep.refs {
        napi_delete_reference(env, r);
    }
    drop(Arc::from_raw(keep.shared));
}

/// Runs on the JS thread for each event; `env` is null while the environment is being torn down.
unsafe extern "C" fn call_js(env: napi_env, js_cb: napi_value, context: *mut c_void, data: *mut c_void) {
    let event = Box::from_raw(data as *mut Event);
    let shared = &*(context as *const Shared);
    if !env.is_null() && !js_cb.is_null() {
        let _ = deliver(env, js_cb, &event);
    }
    if let Event::Request { slot, .. } = *event {
        // the callback has copied the request: the slot may be read into again
        let mut busy = shared.busy.lock().unwrap_or_else(|p| p.into_inner());
        busy[slot] = false;
        shared.freed.notify_one();
    }
}

unsafe fn deliver(env: napi_env, js_cb: napi_value, event: &Event) -> Res<()> {
    let (kind, slot, len, errno) = match *event {
        Event::Request { slot, len } => (EV_REQUEST, slot, len, 0),
        Event::Closed => (EV_CLOSED, 0, 0, 0),
        Event::Stopped => (EV_STOPPED, 0, 0, 0),
        Event::Error { errno } => (EV_ERROR, 0, 0, errno),
        Event::Exited => (EV_EXITED, 0, 0, 0),
    };
    let mut argv = [napi::int32(env, kind)?, napi::number(env, slot as f64)?, napi::number(env, len as f64)?, ptr::null_mut(), ptr::null_mut()];
    let mut argc = 3;
    if kind == EV_ERROR {
        let code = sys::errno_name(errno);
        let message = format!("{code}: {}, read", sys::strerror(errno));
        argv[3] = napi::string(env, code)?;
        argv[4] = napi::string(env, &message)?;
        argc = 5;
    }
    let mut result = ptr::null_mut();
    // an exception thrown by the callback stays pending and reaches the process as an uncaught exception
    napi_call_function(env, napi::undefined(env)?, js_cb, argc, argv.as_ptr(), &mut result);
    Ok(())
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// The thread: read requests into free slots until the connection ends, an error, or the stop flag.
unsafe fn run(fd: i32, ring: Ring, stop: StopFlag, shared: Arc<Shared>, tsfn: Tsfn) {
    let send = |e: Event| {
        napi_call_threadsafe_function(tsfn.0, Box::into_raw(Box::new(e)) as *mut c_void, NAPI_TSFN_BLOCKING);
    };
    let stopping = || (*stop.0).load(Ordering::SeqCst) == 1;
    let mut slot = 0usize;
    let last = loop {
        {
            let mut busy = shared.busy.lock().unwrap_or_else(|p| p.into_inner());
            while busy[slot] {
                busy = shared.freed.wait(busy).unwrap_or_else(|p| p.into_inner());
            }
        }
        let buf = ring.ptr.add(slot * ring.slot_size) as *mut c_void;
        let n = libc::read(fd, buf, ring.slot_size);
        if n < 0 {
            match errno() {
                // ENOENT: the request was interrupted while being read; EINTR: a signal
                libc::ENOENT | libc::EINTR => continue,
                libc::EAGAIN => {
                    // an inherited fd may carry O_NONBLOCK (status flags are shared with the sender's copy):
                    // wait for a request or 1 ms, never spin
                    if stopping() {
                        break Event::Stopped;
                    }
                    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
                    libc::poll(&mut p, 1, 1);
                    continue;
                }
                libc::ENODEV => break Event::Closed,
                e => break Event::Error { errno: e },
            }
        }
        if n == 0 {
            break Event::Closed;
        }
        shared.busy.lock().unwrap_or_else(|p| p.into_inner())[slot] = true;
        send(Event::Request { slot, len: n as usize });
        slot = (slot + 1) % ring.slots;
        if stopping() {
            break Event::Stopped;
        }
    };
    send(last);
    send(Event::Exited);
    napi_release_threadsafe_function(tsfn.0, NAPI_TSFN_RELEASE);
}

/// startFuseReader(fd, ring, slotSize, control, onEvent): starts a reader thread on `fd`. `ring` (a Uint8Array
/// of a whole number of `slotSize` slots, each large enough for the biggest request) receives the requests;
/// `control` is an Int32Array whose element 0 becomes 1 when the session stops (the thread ends after its next
/// request). `onEvent(kind, slot, length[, code, message])` runs on the JS thread; for a request it must copy
/// `ring[slot * slotSize ..][..length]` before it returns.
pub unsafe extern "C" fn start_fuse_reader(env: napi_env, info: napi_callback_info) -> napi_value {
    napi::call(env, || {
        let a = napi::args::<5>(env, info)?;
        let fd = a.fd(0, "fd")?;
        let ring = a.bytes(1, "ring")?;
        let slot_size = a.int(2, "slotSize", 4096.0, (1u64 << 30) as f64)? as usize;
        if ring.len < slot_size || ring.len % slot_size != 0 {
            return fail(format!("argument 'ring' must hold a whole number of {slot_size}-byte slots, has {} bytes", ring.len));
        }
        let control = a.bytes(3, "control")?;
        if control.len < 4 || (control.ptr as usize) % 4 != 0 {
            return fail("argument 'control' must be 4-byte aligned memory of at least 4 bytes");
        }
        let callback = a.v[4];
        let slots = ring.len / slot_size;
        let shared = Arc::new(Shared { busy: Mutex::new(vec![false; slots]), freed: Condvar::new() });
        let mut refs = [ptr::null_mut(); 2];
        ok(napi_create_reference(env, a.v[1], 1, &mut refs[0]), "napi_create_reference")?;
        if let Err(e) = ok(napi_create_reference(env, a.v[3], 1, &mut refs[1]), "napi_create_reference") {
            napi_delete_reference(env, refs[0]);
            return Err(e);
        }
        // call_js's context: valid until finalize, which drops Keep's count after the last call_js
        let context = Arc::as_ptr(&shared);
        let keep = Box::into_raw(Box::new(Keep { refs, shared: Arc::into_raw(shared.clone()) }));
        let mut tsfn = ptr::null_mut();
        let created = napi::string(env, "nydus:fuse-reader").and_then(|name_v| {
            ok(
                napi_create_threadsafe_function(env, callback, ptr::null_mut(), name_v, 0, 1, keep as *mut c_void, finalize, context as *mut c_void, call_js, &mut tsfn),
                "napi_create_threadsafe_function",
            )
        });
        if let Err(e) = created {
            finalize(env, keep as *mut c_void, ptr::null_mut());
            return Err(e);
        }
        let ring = Ring { ptr: ring.ptr(), slot_size, slots };
        let stop = StopFlag(control.ptr as *const AtomicI32);
        let raw_tsfn = tsfn;
        let tsfn = Tsfn(tsfn);
        let spawned = std::thread::Builder::new()
            .name(format!("fuse-reader-{fd}"))
            .stack_size(256 * 1024)
            .spawn(move || run(fd, ring, stop, shared, tsfn));
        if let Err(e) = spawned {
            // the thread never ran (it owned `tsfn`): release the function on its behalf through the raw handle
            napi_release_threadsafe_function(raw_tsfn, NAPI_TSFN_RELEASE);
            return fail(format!("cannot start a FUSE reader thread: {e}"));
        }
        napi::undefined(env)
    })
}
