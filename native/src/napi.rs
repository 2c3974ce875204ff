//! Hand-written Node-API bindings and argument/result helpers.
//!
//! The `napi`/`napi-derive` crates are not available offline, so the few Node-API functions we use
//! are declared here by hand. They stay undefined in the shared object and are resolved against the
//! `node` binary when it loads the addon.

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

pub type napi_env = *mut c_void;
pub type napi_value = *mut c_void;
pub type napi_callback_info = *mut c_void;
pub type napi_status = i32;
pub type napi_callback = unsafe extern "C" fn(napi_env, napi_callback_info) -> napi_value;
pub type napi_ref = *mut c_void;
/// A finalizer Node-API calls when it frees what it was given (an external buffer, a thread-safe function).
pub type napi_finalize = unsafe extern "C" fn(env: napi_env, data: *mut c_void, hint: *mut c_void);

const NAPI_OK: napi_status = 0;
const NAPI_AUTO_LENGTH: usize = usize::MAX;

// napi_valuetype
const NAPI_UNDEFINED: i32 = 0;
const NAPI_NULL: i32 = 1;
const NAPI_BOOLEAN: i32 = 2;
const NAPI_NUMBER: i32 = 3;
const NAPI_STRING: i32 = 4;
// napi_typedarray_type
const NAPI_UINT8_ARRAY: i32 = 1;

extern "C" {
    fn napi_get_cb_info(
        env: napi_env,
        info: napi_callback_info,
        argc: *mut usize,
        argv: *mut napi_value,
        this_arg: *mut napi_value,
        data: *mut *mut c_void,
    ) -> napi_status;
    fn napi_typeof(env: napi_env, value: napi_value, result: *mut i32) -> napi_status;
    fn napi_is_typedarray(env: napi_env, value: napi_value, result: *mut bool) -> napi_status;
    fn napi_get_typedarray_info(
        env: napi_env,
        value: napi_value,
        kind: *mut i32,
        length: *mut usize,
        data: *mut *mut c_void,
        arraybuffer: *mut napi_value,
        byte_offset: *mut usize,
    ) -> napi_status;
    fn napi_create_buffer_copy(
        env: napi_env,
        length: usize,
        data: *const c_void,
        result_data: *mut *mut c_void,
        result: *mut napi_value,
    ) -> napi_status;
    fn napi_create_function(
        env: napi_env,
        name: *const c_char,
        length: usize,
        cb: napi_callback,
        data: *mut c_void,
        result: *mut napi_value,
    ) -> napi_status;
    fn napi_set_named_property(env: napi_env, object: napi_value, name: *const c_char, value: napi_value) -> napi_status;
    fn napi_get_value_double(env: napi_env, value: napi_value, result: *mut f64) -> napi_status;
    fn napi_get_value_bool(env: napi_env, value: napi_value, result: *mut bool) -> napi_status;
    fn napi_get_value_string_utf8(
        env: napi_env,
        value: napi_value,
        buf: *mut c_char,
        bufsize: usize,
        result: *mut usize,
    ) -> napi_status;
    fn napi_create_uint32(env: napi_env, value: u32, result: *mut napi_value) -> napi_status;
    fn napi_create_int32(env: napi_env, value: i32, result: *mut napi_value) -> napi_status;
    fn napi_create_double(env: napi_env, value: f64, result: *mut napi_value) -> napi_status;
    pub fn napi_create_string_utf8(env: napi_env, s: *const c_char, length: usize, result: *mut napi_value) -> napi_status;
    fn napi_create_object(env: napi_env, result: *mut napi_value) -> napi_status;
    fn napi_create_array_with_length(env: napi_env, length: usize, result: *mut napi_value) -> napi_status;
    fn napi_is_array(env: napi_env, value: napi_value, result: *mut bool) -> napi_status;
    fn napi_get_array_length(env: napi_env, value: napi_value, result: *mut u32) -> napi_status;
    fn napi_get_element(env: napi_env, object: napi_value, index: u32, result: *mut napi_value) -> napi_status;
    fn napi_set_element(env: napi_env, object: napi_value, index: u32, value: napi_value) -> napi_status;
    fn napi_get_undefined(env: napi_env, result: *mut napi_value) -> napi_status;
    pub fn napi_create_error(env: napi_env, code: napi_value, msg: napi_value, result: *mut napi_value) -> napi_status;
    pub fn napi_create_reference(env: napi_env, value: napi_value, initial_refcount: u32, result: *mut napi_ref) -> napi_status;
    pub fn napi_delete_reference(env: napi_env, r: napi_ref) -> napi_status;
    fn napi_throw(env: napi_env, error: napi_value) -> napi_status;
    fn napi_throw_error(env: napi_env, code: *const c_char, msg: *const c_char) -> napi_status;
    fn napi_is_exception_pending(env: napi_env, result: *mut bool) -> napi_status;
}

/// Why a call failed; turned into a thrown JS Error at the boundary.
pub enum Failure {
    /// Plain Error with this message (bad arguments, corrupt codec input, ...).
    Msg(String),
    /// A syscall failed: Error with Node-style `code` (errno name), `errno` (negative, as Node does)
    /// and `syscall` properties.
    Sys { errno: i32, syscall: &'static str, path: Option<String> },
    /// A Node-API call failed and (probably) left an exception pending.
    Napi(&'static str),
}

pub type Res<T> = Result<T, Failure>;

pub fn fail<T>(msg: impl Into<String>) -> Res<T> {
    Err(Failure::Msg(msg.into()))
}

fn check(status: napi_status, what: &'static str) -> Res<()> {
    if status == NAPI_OK {
        Ok(())
    } else {
        Err(Failure::Napi(what))
    }
}

/// A JS Uint8Array/Buffer's backing memory. Kept as a raw pointer (not a slice) because callers may
/// pass the same memory as source and destination, which Rust references must not alias.
#[derive(Clone, Copy)]
pub struct Bytes {
    pub ptr: *mut u8,
    pub len: usize,
}

impl Bytes {
    /// Non-null even for empty views: C libraries and slice constructors reject null.
    pub fn ptr(&self) -> *mut u8 {
        if self.ptr.is_null() {
            ptr::NonNull::<u8>::dangling().as_ptr()
        } else {
            self.ptr
        }
    }
    /// Read-only view; only for callees that do not write into any other argument.
    pub unsafe fn as_slice<'a>(&self) -> &'a [u8] {
        std::slice::from_raw_parts(self.ptr(), self.len)
    }
}

/// The arguments of one call, padded with `undefined`.
pub struct Args<const N: usize> {
    pub env: napi_env,
    pub v: [napi_value; N],
    pub count: usize,
}

pub unsafe fn args<const N: usize>(env: napi_env, info: napi_callback_info) -> Res<Args<N>> {
    let mut argc = N;
    let mut v = [ptr::null_mut(); N];
    check(
        napi_get_cb_info(env, info, &mut argc, v.as_mut_ptr(), ptr::null_mut(), ptr::null_mut()),
        "napi_get_cb_info",
    )?;
    Ok(Args { env, v, count: argc })
}

impl<const N: usize> Args<N> {
    unsafe fn type_of(&self, i: usize) -> Res<i32> {
        if i >= self.count {
            return Ok(NAPI_UNDEFINED);
        }
        let mut t = 0;
        check(napi_typeof(self.env, self.v[i], &mut t), "napi_typeof")?;
        Ok(t)
    }

    pub unsafe fn bytes(&self, i: usize, name: &str) -> Res<Bytes> {
        let mut is = false;
        if i < self.count {
            check(napi_is_typedarray(self.env, self.v[i], &mut is), "napi_is_typedarray")?;
        }
        if !is {
            return fail(format!("argument '{name}' must be a Buffer or Uint8Array"));
        }
        let (mut kind, mut len, mut data, mut ab, mut off) = (0, 0usize, ptr::null_mut(), ptr::null_mut(), 0usize);
        check(
            napi_get_typedarray_info(self.env, self.v[i], &mut kind, &mut len, &mut data, &mut ab, &mut off),
            "napi_get_typedarray_info",
        )?;
        if kind != NAPI_UINT8_ARRAY {
            return fail(format!("argument '{name}' must be a Buffer or Uint8Array"));
        }
        Ok(Bytes { ptr: data as *mut u8, len })
    }

    /// An integral JS number within [min, max].
    pub unsafe fn int(&self, i: usize, name: &str, min: f64, max: f64) -> Res<f64> {
        if self.type_of(i)? != NAPI_NUMBER {
            return fail(format!("argument '{name}' must be a number"));
        }
        let mut d = 0.0;
        check(napi_get_value_double(self.env, self.v[i], &mut d), "napi_get_value_double")?;
        if d.fract() != 0.0 || !(min..=max).contains(&d) {
            return fail(format!("argument '{name}' must be an integer in [{min}, {max}], got {d}"));
        }
        Ok(d)
    }

    pub unsafe fn fd(&self, i: usize, name: &str) -> Res<i32> {
        Ok(self.int(i, name, 0.0, i32::MAX as f64)? as i32)
    }

    /// An optional integer: `undefined` gives `default`.
    /// A boolean, or `default` when undefined.
    pub unsafe fn bool_or(&self, i: usize, name: &str, default: bool) -> Res<bool> {
        match self.type_of(i)? {
            NAPI_UNDEFINED => Ok(default),
            NAPI_BOOLEAN => {
                let mut b = false;
                check(napi_get_value_bool(self.env, self.v[i], &mut b), "napi_get_value_bool")?;
                Ok(b)
            }
            _ => fail(format!("argument '{name}' must be a boolean")),
        }
    }

    pub unsafe fn int_or(&self, i: usize, name: &str, min: f64, max: f64, default: f64) -> Res<f64> {
        if self.type_of(i)? == NAPI_UNDEFINED {
            return Ok(default);
        }
        self.int(i, name, min, max)
    }

    /// A string without NUL bytes; `null`/`undefined` give None when `optional`.
    pub unsafe fn cstring(&self, i: usize, name: &str, optional: bool) -> Res<Option<CString>> {
        let t = self.type_of(i)?;
        if optional && (t == NAPI_UNDEFINED || t == NAPI_NULL) {
            return Ok(None);
        }
        if t != NAPI_STRING {
            return fail(format!("argument '{name}' must be a string"));
        }
        let mut len = 0usize;
        check(
            napi_get_value_string_utf8(self.env, self.v[i], ptr::null_mut(), 0, &mut len),
            "napi_get_value_string_utf8",
        )?;
        let mut buf = vec![0u8; len + 1];
        check(
            napi_get_value_string_utf8(self.env, self.v[i], buf.as_mut_ptr() as *mut c_char, len + 1, &mut len),
            "napi_get_value_string_utf8",
        )?;
        buf.truncate(len);
        match CString::new(buf) {
            Ok(s) => Ok(Some(s)),
            Err(_) => fail(format!("argument '{name}' must not contain NUL characters")),
        }
    }

    /// An array of Buffers/Uint8Arrays (at most `max`).
    pub unsafe fn bytes_list(&self, i: usize, name: &str, max: usize) -> Res<Vec<Bytes>> {
        self.list(i, name, max, ("Buffers", "are accepted"), |one| one.bytes(0, name))
    }

    /// An array of file descriptors (at most `max`).
    pub unsafe fn fds(&self, i: usize, name: &str, max: usize) -> Res<Vec<i32>> {
        self.list(i, name, max, ("file descriptors", "can be passed"), |one| one.fd(0, name))
    }

    /// An array of at most `max` elements, each read by `each` as the only argument of an `Args`;
    /// `what` names the elements and how the limit reads in the error ("at most 4 file descriptors can be passed").
    unsafe fn list<T>(&self, i: usize, name: &str, max: usize, what: (&str, &str), each: impl Fn(&Args<1>) -> Res<T>) -> Res<Vec<T>> {
        let (kind, limit) = what;
        let mut is = false;
        if i < self.count {
            check(napi_is_array(self.env, self.v[i], &mut is), "napi_is_array")?;
        }
        if !is {
            return fail(format!("argument '{name}' must be an array of {kind}"));
        }
        let mut n = 0u32;
        check(napi_get_array_length(self.env, self.v[i], &mut n), "napi_get_array_length")?;
        if n as usize > max {
            return fail(format!("argument '{name}' has {n} {kind}, at most {max} {limit}"));
        }
        let mut out = Vec::with_capacity(n as usize);
        for k in 0..n {
            let mut e = ptr::null_mut();
            check(napi_get_element(self.env, self.v[i], k, &mut e), "napi_get_element")?;
            out.push(each(&Args::<1> { env: self.env, v: [e], count: 1 })?);
        }
        Ok(out)
    }
}

pub unsafe fn buffer_copy(env: napi_env, data: &[u8]) -> Res<napi_value> {
    let mut out = ptr::null_mut();
    let mut p = ptr::null_mut();
    check(
        napi_create_buffer_copy(env, data.len(), data.as_ptr() as *const c_void, &mut p, &mut out),
        "napi_create_buffer_copy",
    )?;
    Ok(out)
}

pub unsafe fn uint32(env: napi_env, v: u32) -> Res<napi_value> {
    let mut out = ptr::null_mut();
    check(napi_create_uint32(env, v, &mut out), "napi_create_uint32")?;
    Ok(out)
}

pub unsafe fn int32(env: napi_env, v: i32) -> Res<napi_value> {
    let mut out = ptr::null_mut();
    check(napi_create_int32(env, v, &mut out), "napi_create_int32")?;
    Ok(out)
}

/// Byte counts can exceed u32 range (large reads/writes), so they are returned as doubles.
pub unsafe fn number(env: napi_env, v: f64) -> Res<napi_value> {
    let mut out = ptr::null_mut();
    check(napi_create_double(env, v, &mut out), "napi_create_double")?;
    Ok(out)
}

pub unsafe fn string(env: napi_env, s: &str) -> Res<napi_value> {
    let mut out = ptr::null_mut();
    check(
        napi_create_string_utf8(env, s.as_ptr() as *const c_char, s.len(), &mut out),
        "napi_create_string_utf8",
    )?;
    Ok(out)
}

pub unsafe fn undefined(env: napi_env) -> Res<napi_value> {
    let mut out = ptr::null_mut();
    check(napi_get_undefined(env, &mut out), "napi_get_undefined")?;
    Ok(out)
}

pub unsafe fn object(env: napi_env) -> Res<napi_value> {
    let mut out = ptr::null_mut();
    check(napi_create_object(env, &mut out), "napi_create_object")?;
    Ok(out)
}

pub unsafe fn int_array(env: napi_env, values: &[i32]) -> Res<napi_value> {
    let mut arr = ptr::null_mut();
    check(napi_create_array_with_length(env, values.len(), &mut arr), "napi_create_array_with_length")?;
    for (i, v) in values.iter().enumerate() {
        check(napi_set_element(env, arr, i as u32, int32(env, *v)?), "napi_set_element")?;
    }
    Ok(arr)
}

/// `name` must be NUL-terminated.
pub unsafe fn set(env: napi_env, obj: napi_value, name: &[u8], v: napi_value) -> Res<()> {
    debug_assert!(name.ends_with(b"\0"));
    check(napi_set_named_property(env, obj, name.as_ptr() as *const c_char, v), "napi_set_named_property")
}

unsafe fn throw_message(env: napi_env, msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    napi_throw_error(env, ptr::null(), c.as_ptr());
}

unsafe fn throw_sys(env: napi_env, errno: i32, syscall: &str, path: Option<&str>) -> Res<()> {
    let name = crate::sys::errno_name(errno);
    let mut msg = format!("{name}: {}, {syscall}", crate::sys::strerror(errno));
    if let Some(p) = path {
        msg.push_str(&format!(" '{p}'"));
    }
    let mut err = ptr::null_mut();
    check(
        napi_create_error(env, string(env, name)?, string(env, &msg)?, &mut err),
        "napi_create_error",
    )?;
    set(env, err, b"errno\0", int32(env, -errno)?)?;
    set(env, err, b"syscall\0", string(env, syscall)?)?;
    if let Some(p) = path {
        set(env, err, b"path\0", string(env, p)?)?;
    }
    check(napi_throw(env, err), "napi_throw")
}

unsafe fn throw(env: napi_env, f: Failure) {
    let mut pending = false;
    napi_is_exception_pending(env, &mut pending);
    if pending {
        return;
    }
    match f {
        Failure::Msg(m) => throw_message(env, &m),
        Failure::Sys { errno, syscall, path } => {
            if throw_sys(env, errno, syscall, path.as_deref()).is_err() {
                throw_message(env, &format!("{syscall} failed with errno {errno}"));
            }
        }
        Failure::Napi(what) => throw_message(env, &format!("internal Node-API failure in {what}")),
    }
}

/// Runs one exported function body: failures and panics become JS exceptions, never an abort.
pub unsafe fn call(env: napi_env, body: impl FnOnce() -> Res<napi_value>) -> napi_value {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(v)) => v,
        Ok(Err(f)) => {
            throw(env, f);
            ptr::null_mut()
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            throw(env, Failure::Msg(format!("nydus-native internal error: {what}")));
            ptr::null_mut()
        }
    }
}

/// `name` must be NUL-terminated.
pub unsafe fn export(env: napi_env, exports: napi_value, name: &[u8], f: napi_callback) -> Res<()> {
    let mut func = ptr::null_mut();
    check(
        napi_create_function(env, name.as_ptr() as *const c_char, NAPI_AUTO_LENGTH, f, ptr::null_mut(), &mut func),
        "napi_create_function",
    )?;
    set(env, exports, name, func)
}
