//! Syscalls Node does not offer: mount(2)/umount2(2), the /dev/fuse clone ioctl, blocking
//! read/write on raw fds, and SCM_RIGHTS fd passing.

use std::ffi::{c_int, c_ulong, c_void, CStr};
use std::mem;
use std::ptr;

use crate::napi::{self, fail, napi_callback_info, napi_env, napi_value, Failure, Res};

macro_rules! errno_names {
    ($($name:ident),* $(,)?) => {
        /// Node-style errno name (`ENOENT`, ...).
        pub fn errno_name(e: i32) -> &'static str {
            match e {
                $(libc::$name => stringify!($name),)*
                _ => "UNKNOWN",
            }
        }
    };
}

// Aliases with the same value (EWOULDBLOCK, EDEADLOCK, ENOTSUP) are left out: Node reports the first name.
errno_names!(
    EPERM, ENOENT, ESRCH, EINTR, EIO, ENXIO, E2BIG, ENOEXEC, EBADF, ECHILD, EAGAIN, ENOMEM, EACCES,
    EFAULT, ENOTBLK, EBUSY, EEXIST, EXDEV, ENODEV, ENOTDIR, EISDIR, EINVAL, ENFILE, EMFILE, ENOTTY,
    ETXTBSY, EFBIG, ENOSPC, ESPIPE, EROFS, EMLINK, EPIPE, EDOM, ERANGE, EDEADLK, ENAMETOOLONG, ENOLCK,
    ENOSYS, ENOTEMPTY, ELOOP, ENOMSG, EIDRM, ENOSTR, ENODATA, ETIME, ENOSR, ENOLINK, EPROTO, EBADMSG,
    EOVERFLOW, EILSEQ, EUSERS, ENOTSOCK, EDESTADDRREQ, EMSGSIZE, EPROTOTYPE, ENOPROTOOPT,
    EPROTONOSUPPORT, ESOCKTNOSUPPORT, EOPNOTSUPP, EPFNOSUPPORT, EAFNOSUPPORT, EADDRINUSE,
    EADDRNOTAVAIL, ENETDOWN, ENETUNREACH, ENETRESET, ECONNABORTED, ECONNRESET, ENOBUFS, EISCONN,
    ENOTCONN, ESHUTDOWN, ETOOMANYREFS, ETIMEDOUT, ECONNREFUSED, EHOSTDOWN, EHOSTUNREACH, EALREADY,
    EINPROGRESS, ESTALE, EDQUOT, ECANCELED, EOWNERDEAD, ENOTRECOVERABLE, ENOMEDIUM, EMEDIUMTYPE,
    ENOKEY, EKEYEXPIRED, EKEYREVOKED, EKEYREJECTED, ERFKILL, EHWPOISON,
);

pub fn strerror(e: i32) -> String {
    let mut buf = [0 as libc::c_char; 256];
    // SAFETY: the XSI strerror_r writes a NUL-terminated string into buf.
    let rc = unsafe { libc::strerror_r(e, buf.as_mut_ptr(), buf.len()) };
    if rc != 0 {
        return format!("unknown error {e}");
    }
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

fn sys_err<T>(syscall: &'static str, path: Option<&CStr>) -> Res<T> {
    Err(Failure::Sys { errno: errno(), syscall, path: path.map(|p| p.to_string_lossy().into_owned()) })
}

/// Retries a syscall interrupted by a signal; -1 leaves errno set for `sys_err`.
fn retry<T: PartialEq + From<i8>>(mut f: impl FnMut() -> T) -> T {
    loop {
        let r = f();
        if r != T::from(-1) || errno() != libc::EINTR {
            return r;
        }
    }
}

fn opt_ptr(s: &Option<std::ffi::CString>) -> *const libc::c_char {
    s.as_ref().map_or(ptr::null(), |s| s.as_ptr())
}

/// mount(source, target, fstype, flags, data)
pub unsafe extern "C" fn mount(env: napi_env, info: napi_callback_info) -> napi_value {
    napi::call(env, || {
        let a = napi::args::<5>(env, info)?;
        let source = a.cstring(0, "source", true)?;
        let target = a.cstring(1, "target", false)?.unwrap_or_default();
        let fstype = a.cstring(2, "fstype", true)?;
        let flags = a.int_or(3, "flags", 0.0, u32::MAX as f64, 0.0)? as c_ulong;
        let data = a.cstring(4, "data", true)?;
        let rc = libc::mount(opt_ptr(&source), target.as_ptr(), opt_ptr(&fstype), flags, opt_ptr(&data) as *const c_void);
        if rc != 0 {
            return sys_err("mount", Some(&target));
        }
        napi::undefined(env)
    })
}

/// umount2(target, flags)
pub unsafe extern "C" fn umount2(env: napi_env, info: napi_callback_info) -> napi_value {
    napi::call(env, || {
        let a = napi::args::<2>(env, info)?;
        let target = a.cstring(0, "target", false)?.unwrap_or_default();
        let flags = a.int_or(1, "flags", 0.0, i32::MAX as f64, 0.0)? as c_int;
        if libc::umount2(target.as_ptr(), flags) != 0 {
            return sys_err("umount2", Some(&target));
        }
        napi::undefined(env)
    })
}

/// FUSE_DEV_IOC_CLONE = _IOR(229, 0, uint32_t)
const FUSE_DEV_IOC_CLONE: c_ulong = (2 << 30) | ((mem::size_of::<u32>() as c_ulong) << 16) | (229 << 8);

/// openFuseClone(sessionFd) -> fd: a new /dev/fuse fd attached to the same FUSE session, so each
/// worker thread gets its own request queue.
pub unsafe extern "C" fn open_fuse_clone(env: napi_env, info: napi_callback_info) -> napi_value {
    napi::call(env, || {
        let a = napi::args::<1>(env, info)?;
        let session = a.fd(0, "sessionFd")? as u32;
        let path = c"/dev/fuse";
        let fd = retry(|| libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC));
        if fd < 0 {
            return sys_err("open", Some(path));
        }
        if libc::ioctl(fd, FUSE_DEV_IOC_CLONE as _, &session as *const u32) != 0 {
            let e = errno();
            libc::close(fd);
            return Err(Failure::Sys { errno: e, syscall: "ioctl", path: Some("/dev/fuse".into()) });
        }
        napi::int32(env, fd)
    })
}

/// readFd(fd, buf) -> bytes read (blocking read(2))
pub unsafe extern "C" fn read_fd(env: napi_env, info: napi_callback_info) -> napi_value {
    napi::call(env, || {
        let a = napi::args::<2>(env, info)?;
        let fd = a.fd(0, "fd")?;
        let buf = a.bytes(1, "buf")?;
        let n = retry(|| libc::read(fd, buf.ptr() as *mut c_void, buf.len) as isize);
        if n < 0 {
            return sys_err("read", None);
        }
        napi::number(env, n as f64)
    })
}

/// writeFd(fd, buf) -> bytes written (one write(2))
pub unsafe extern "C" fn write_fd(env: napi_env, info: napi_callback_info) -> napi_value {
    napi::call(env, || {
        let a = napi::args::<2>(env, info)?;
        let fd = a.fd(0, "fd")?;
        let buf = a.bytes(1, "buf")?;
        let n = retry(|| libc::write(fd, buf.ptr() as *const c_void, buf.len) as isize);
        if n < 0 {
            return sys_err("write", None);
        }
        napi::number(env, n as f64)
    })
}

/// The kernel's SCM_MAX_FD.
const MAX_FDS: usize = 253;

/// Control buffer big enough for MAX_FDS descriptors, aligned for cmsghdr.
#[repr(C, align(8))]
struct CmsgBuf([u8; 64 + MAX_FDS * 4]);

/// sendFds(socketFd, data, fds) -> bytes sent
pub unsafe extern "C" fn send_fds(env: napi_env, info: napi_callback_info) -> napi_value {
    napi::call(env, || {
        let a = napi::args::<3>(env, info)?;
        let sock = a.fd(0, "socketFd")?;
        let data = a.bytes(1, "data")?;
        let fds = a.fds(2, "fds", MAX_FDS)?;
        if data.len == 0 && !fds.is_empty() {
            // A stream socket does not deliver ancillary data without at least one data byte.
            return fail("sendFds: data must not be empty when passing file descriptors");
        }
        let mut iov = libc::iovec { iov_base: data.ptr() as *mut c_void, iov_len: data.len };
        let mut cbuf = CmsgBuf([0; 64 + MAX_FDS * 4]);
        let mut msg: libc::msghdr = mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            let payload = (fds.len() * mem::size_of::<c_int>()) as u32;
            msg.msg_control = cbuf.0.as_mut_ptr() as *mut c_void;
            msg.msg_controllen = libc::CMSG_SPACE(payload) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(payload) as _;
            ptr::copy_nonoverlapping(fds.as_ptr() as *const u8, libc::CMSG_DATA(cmsg), payload as usize);
        }
        let n = retry(|| libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) as isize);
        if n < 0 {
            return sys_err("sendmsg", None);
        }
        napi::number(env, n as f64)
    })
}

/// recvFds(socketFd, maxData) -> { data: Buffer, fds: number[] }; empty data with no fds means EOF.
pub unsafe extern "C" fn recv_fds(env: napi_env, info: napi_callback_info) -> napi_value {
    napi::call(env, || {
        let a = napi::args::<2>(env, info)?;
        let sock = a.fd(0, "socketFd")?;
        let max = a.int(1, "maxData", 1.0, (64 << 20) as f64)? as usize;
        let mut data = vec![0u8; max];
        let mut iov = libc::iovec { iov_base: data.as_mut_ptr() as *mut c_void, iov_len: max };
        let mut cbuf = CmsgBuf([0; 64 + MAX_FDS * 4]);
        let mut msg: libc::msghdr = mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.0.as_mut_ptr() as *mut c_void;
        msg.msg_controllen = cbuf.0.len() as _;
        let n = retry(|| libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) as isize);
        if n < 0 {
            return sys_err("recvmsg", None);
        }
        let mut fds = Vec::new();
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let p = libc::CMSG_DATA(cmsg) as *const c_int;
                for i in 0..bytes / mem::size_of::<c_int>() {
                    fds.push(ptr::read_unaligned(p.add(i)));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        if msg.msg_flags & libc::MSG_CTRUNC != 0 {
            for fd in &fds {
                libc::close(*fd);
            }
            return fail("recvFds: control data truncated, some file descriptors were lost");
        }
        let out = napi::object(env)?;
        napi::set(env, out, b"data\0", napi::buffer_copy(env, &data[..n as usize])?)?;
        napi::set(env, out, b"fds\0", napi::int_array(env, &fds)?)?;
        Ok(out)
    })
}

/// socketpair() -> [fd, fd]: a connected AF_UNIX stream pair with close-on-exec set.
pub unsafe extern "C" fn socketpair(env: napi_env, info: napi_callback_info) -> napi_value {
    napi::call(env, || {
        let _ = napi::args::<0>(env, info)?;
        let mut sv = [-1 as c_int; 2];
        if libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, sv.as_mut_ptr()) != 0 {
            return sys_err("socketpair", None);
        }
        napi::int_array(env, &sv)
    })
}

/// exit(status): ends the process at once with _exit(2). Node's own exit joins the libuv pool, which never
/// returns while a pool thread sits in a read(2) the kernel will not finish (a blob on a dead network
/// mount); a daemon that has already unmounted and flushed must still leave.
pub unsafe extern "C" fn exit_now(env: napi_env, info: napi_callback_info) -> napi_value {
    napi::call(env, || {
        let a = napi::args::<1>(env, info)?;
        let status = a.int(0, "status", 0.0, 255.0)? as c_int;
        libc::_exit(status)
    })
}
