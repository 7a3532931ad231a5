//! Memory the program maps itself: `mmap`/`munmap`/`mremap` (net bytes
//! mapped, page-rounded), System V shared memory (net bytes attached), and
//! the program break (`brk`/`sbrk`, counted). Never charged to a site.

use std::ffi::{c_int, c_void};

use rt::__private::engine;
use rt::Op;

use crate::guard;
use crate::syscalls::{self, errno, set_errno};
use crate::{real, shm};

fn pages(len: usize) -> i64 {
    let page = syscalls::page_size();
    (len.div_ceil(page).saturating_mul(page)) as i64
}

fn count_mapping(op: Op, bytes: usize, net: i64) {
    if guard::held() {
        return;
    }
    let saved = errno();
    engine::record_op(op, bytes);
    engine::add_net_mapped(net);
    set_errno(saved);
}

/// `mmap(2)`.
///
/// # Safety
/// C contract of mmap(2).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: i64,
) -> *mut c_void {
    let p = syscalls::mmap(addr, len, prot, flags, fd, offset);
    if p != libc::MAP_FAILED {
        count_mapping(Op::Mmap, len, pages(len));
    }
    p
}

/// `mmap64(2)` (the same call on 64-bit Linux).
///
/// # Safety
/// C contract of mmap(2).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn mmap64(
    addr: *mut c_void,
    len: usize,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: i64,
) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { mmap(addr, len, prot, flags, fd, offset) }
}

/// `munmap(2)`.
///
/// # Safety
/// C contract of munmap(2).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn munmap(addr: *mut c_void, len: usize) -> c_int {
    let rc = syscalls::munmap(addr, len);
    if rc == 0 {
        count_mapping(Op::Munmap, len, -pages(len));
    }
    rc
}

/// `mremap(2)`. C declares it variadic (`...` = the new address, read only
/// with `MREMAP_FIXED`); on the supported ABIs a variadic pointer argument
/// arrives exactly like a fifth named one.
///
/// # Safety
/// C contract of mremap(2).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn mremap(
    old: *mut c_void,
    old_len: usize,
    new_len: usize,
    flags: c_int,
    new_addr: *mut c_void,
) -> *mut c_void {
    let new_addr = if flags & libc::MREMAP_FIXED != 0 {
        new_addr
    } else {
        std::ptr::null_mut()
    };
    let p = syscalls::mremap(old, old_len, new_len, flags, new_addr);
    if p != libc::MAP_FAILED {
        count_mapping(Op::Mremap, new_len, pages(new_len) - pages(old_len));
    }
    p
}

// ---------------------------------------------------------------------------
// System V shared memory: net bytes attached.

fn count_shm(op: Op, bytes: usize, net: i64) {
    if guard::held() {
        return;
    }
    let saved = errno();
    engine::record_op(op, bytes);
    if net != 0 {
        engine::add_net_shm(net);
    }
    set_errno(saved);
}

/// `shmget(2)`.
///
/// # Safety
/// C contract of shmget(2).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn shmget(key: libc::key_t, size: usize, flags: c_int) -> c_int {
    let id = real::shmget(key, size, flags);
    if id != -1 {
        count_shm(Op::Shmget, size, 0);
    }
    id
}

/// `shmat(2)`: adds the segment's size (`IPC_STAT`) to net shared memory.
///
/// # Safety
/// C contract of shmat(2).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn shmat(id: c_int, addr: *const c_void, flags: c_int) -> *mut c_void {
    let p = real::shmat(id, addr, flags);
    if p as isize != -1 && !guard::held() {
        let bytes = real::shm_segment_size(id).unwrap_or(0);
        let net = if shm::attached(p as usize, bytes) {
            bytes as i64
        } else {
            0
        };
        count_shm(Op::Shmat, bytes, net);
    }
    p
}

/// `shmdt(2)`: subtracts what was attached at `addr`.
///
/// # Safety
/// C contract of shmdt(2).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn shmdt(addr: *const c_void) -> c_int {
    let rc = real::shmdt(addr);
    if rc == 0 {
        let bytes = shm::detached(addr as usize).unwrap_or(0);
        count_shm(Op::Shmdt, bytes, -(bytes as i64));
    }
    rc
}

/// `shmctl(2)`.
///
/// # Safety
/// C contract of shmctl(2).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn shmctl(id: c_int, cmd: c_int, buf: *mut libc::shmid_ds) -> c_int {
    // SAFETY: the caller's contract for `buf`.
    let rc = unsafe { real::shmctl(id, cmd, buf) };
    if rc != -1 {
        count_shm(Op::Shmctl, 0, 0);
    }
    rc
}

// ---------------------------------------------------------------------------
// The program break: counted.

/// `brk(2)`.
///
/// # Safety
/// C contract of brk(2).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn brk(addr: *mut c_void) -> c_int {
    let rc = real::brk(addr);
    if rc == 0 && !guard::held() {
        let saved = errno();
        engine::record_op(Op::Brk, 0);
        set_errno(saved);
    }
    rc
}

/// `sbrk(2)`.
///
/// # Safety
/// C contract of sbrk(2).
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn sbrk(increment: isize) -> *mut c_void {
    let p = real::sbrk(increment);
    if p as isize != -1 && !guard::held() {
        let saved = errno();
        engine::record_op(Op::Sbrk, increment.max(0) as usize);
        set_errno(saved);
    }
    p
}
