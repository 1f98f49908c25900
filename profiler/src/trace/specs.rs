//! The hooked syscalls: tracepoint name, syscall number on this architecture,
//! and how the kernel side reads their arguments ([`SyscallSpec`]).

use profiler_common::{NO_ARG, SyscallSpec, argkind, op, specflag, waitkind};

/// One hooked syscall.
#[derive(Clone, Copy, Debug)]
pub struct Hook {
    /// The syscall's name (for messages and tests).
    pub name: &'static str,
    /// Syscall number on this architecture.
    pub nr: i64,
    /// What the kernel does with it.
    pub spec: SyscallSpec,
}

/// Builder keeping the table below readable.
#[derive(Clone, Copy)]
struct S(SyscallSpec);

impl S {
    const fn new(op: u32, argkind: u32) -> Self {
        S(SyscallSpec {
            op,
            argkind,
            flags: 0,
            dirfd_arg: NO_ARG,
            name_arg: NO_ARG,
            fd_arg: NO_ARG,
            flags_arg: NO_ARG,
            mode_arg: NO_ARG,
            dirfd2_arg: NO_ARG,
            name2_arg: NO_ARG,
            _pad: 0,
        })
    }
    /// Path op: `(dirfd, name)` argument indices (`NO_ARG` dirfd = cwd).
    const fn path(op: u32, dirfd: u8, name: u8) -> Self {
        let mut s = Self::new(op, argkind::PATH);
        s.0.dirfd_arg = dirfd;
        s.0.name_arg = name;
        s
    }
    const fn fd(op: u32, fd: u8) -> Self {
        let mut s = Self::new(op, argkind::FD);
        s.0.fd_arg = fd;
        s
    }
    const fn flags(mut self, f: u32) -> Self {
        self.0.flags |= f;
        self
    }
    const fn flags_arg(mut self, i: u8) -> Self {
        self.0.flags_arg = i;
        self
    }
    const fn mode_arg(mut self, i: u8) -> Self {
        self.0.mode_arg = i;
        self
    }
    /// A timed wait or timer arming (`kind` from [`waitkind`]).
    const fn wait(kind: u32) -> Self {
        let mut s = Self::new(0, argkind::WAIT);
        s.0.flags = kind;
        s
    }
    const fn second(mut self, dirfd: u8, name: u8) -> Self {
        self.0.flags |= specflag::TWO_PATHS;
        self.0.dirfd2_arg = dirfd;
        self.0.name2_arg = name;
        self
    }
}

const N: u8 = NO_ARG;

macro_rules! hooks {
    ($( $(#[$m:meta])* $name:literal => $sys:ident : $spec:expr ;)*) => {
        /// Every hook available on this architecture.
        #[must_use]
        #[expect(clippy::vec_init_then_push, reason = "entries are cfg-gated per architecture")]
        pub fn hooks() -> Vec<Hook> {
            let mut v = Vec::new();
            $(
                $(#[$m])*
                v.push(Hook { name: $name, nr: libc::$sys, spec: $spec.0 });
            )*
            v
        }
    };
}

hooks! {
    #[cfg(target_arch = "x86_64")]
    "open" => SYS_open: S::path(op::OPEN_WRITE, N, 0).flags(specflag::OPEN).flags_arg(1).mode_arg(2);
    "openat" => SYS_openat: S::path(op::OPEN_WRITE, 0, 1).flags(specflag::OPEN).flags_arg(2).mode_arg(3);
    "open_by_handle_at" => SYS_open_by_handle_at: S::path(op::OPEN_WRITE, N, N).flags(specflag::OPEN).flags_arg(2);
    "openat2" => SYS_openat2: S::path(op::OPEN_WRITE, 0, 1).flags(specflag::OPEN | specflag::OPEN_HOW).flags_arg(2);
    #[cfg(target_arch = "x86_64")]
    "creat" => SYS_creat: S::path(op::OPEN_WRITE, N, 0).flags(specflag::OPEN | specflag::CREAT).mode_arg(1);
    #[cfg(target_arch = "x86_64")]
    "mkdir" => SYS_mkdir: S::path(op::MKDIR, N, 0).mode_arg(1);
    "mkdirat" => SYS_mkdirat: S::path(op::MKDIR, 0, 1).mode_arg(2);
    #[cfg(target_arch = "x86_64")]
    "mknod" => SYS_mknod: S::path(op::MKNOD, N, 0).mode_arg(1);
    "mknodat" => SYS_mknodat: S::path(op::MKNOD, 0, 1).mode_arg(2);
    #[cfg(target_arch = "x86_64")]
    "rename" => SYS_rename: S::path(op::RENAME_FROM, N, 0).second(N, 1);
    "renameat" => SYS_renameat: S::path(op::RENAME_FROM, 0, 1).second(2, 3);
    "renameat2" => SYS_renameat2: S::path(op::RENAME_FROM, 0, 1).second(2, 3).flags_arg(4);
    #[cfg(target_arch = "x86_64")]
    "link" => SYS_link: S::path(op::LINK, N, N).second(N, 1).flags(specflag::SECOND_ONLY);
    "linkat" => SYS_linkat: S::path(op::LINK, 0, 1).second(2, 3).flags(specflag::SECOND_ONLY);
    #[cfg(target_arch = "x86_64")]
    "symlink" => SYS_symlink: S::path(op::SYMLINK, N, N).second(N, 1).flags(specflag::SECOND_ONLY);
    "symlinkat" => SYS_symlinkat: S::path(op::SYMLINK, N, N).second(1, 2).flags(specflag::SECOND_ONLY);
    #[cfg(target_arch = "x86_64")]
    "unlink" => SYS_unlink: S::path(op::UNLINK, N, 0);
    "unlinkat" => SYS_unlinkat: S::path(op::UNLINK, 0, 1).flags(specflag::UNLINKAT).flags_arg(2);
    #[cfg(target_arch = "x86_64")]
    "rmdir" => SYS_rmdir: S::path(op::RMDIR, N, 0);
    "truncate" => SYS_truncate: S::path(op::TRUNCATE, N, 0);
    "ftruncate" => SYS_ftruncate: S::fd(op::TRUNCATE, 0);
    #[cfg(target_arch = "x86_64")]
    "chmod" => SYS_chmod: S::path(op::CHMOD, N, 0).mode_arg(1);
    "fchmod" => SYS_fchmod: S::fd(op::CHMOD, 0).mode_arg(1);
    "fchmodat" => SYS_fchmodat: S::path(op::CHMOD, 0, 1).mode_arg(2);
    "fchmodat2" => SYS_fchmodat2: S::path(op::CHMOD, 0, 1).mode_arg(2).flags(specflag::EMPTY_IS_FD).flags_arg(3);
    #[cfg(target_arch = "x86_64")]
    "chown" => SYS_chown: S::path(op::CHOWN, N, 0);
    #[cfg(target_arch = "x86_64")]
    "lchown" => SYS_lchown: S::path(op::CHOWN, N, 0);
    "fchown" => SYS_fchown: S::fd(op::CHOWN, 0);
    "fchownat" => SYS_fchownat: S::path(op::CHOWN, 0, 1).flags(specflag::EMPTY_IS_FD).flags_arg(4);
    #[cfg(target_arch = "x86_64")]
    "utime" => SYS_utime: S::path(op::UTIMES, N, 0);
    #[cfg(target_arch = "x86_64")]
    "utimes" => SYS_utimes: S::path(op::UTIMES, N, 0);
    "utimensat" => SYS_utimensat: S::path(op::UTIMES, 0, 1).flags(specflag::EMPTY_IS_FD).flags_arg(3);
    #[cfg(target_arch = "x86_64")]
    "futimesat" => SYS_futimesat: S::path(op::UTIMES, 0, 1);
    "setxattr" => SYS_setxattr: S::path(op::SETXATTR, N, 0);
    "lsetxattr" => SYS_lsetxattr: S::path(op::SETXATTR, N, 0);
    "fsetxattr" => SYS_fsetxattr: S::fd(op::SETXATTR, 0);
    "removexattr" => SYS_removexattr: S::path(op::REMOVEXATTR, N, 0);
    "lremovexattr" => SYS_lremovexattr: S::path(op::REMOVEXATTR, N, 0);
    "fremovexattr" => SYS_fremovexattr: S::fd(op::REMOVEXATTR, 0);
    "bind" => SYS_bind: S::new(op::BIND, argkind::BIND);
    #[cfg(target_arch = "x86_64")]
    "access" => SYS_access: S::path(op::ACCESS_W, N, 0).flags(specflag::ACCESS).mode_arg(1);
    "faccessat" => SYS_faccessat: S::path(op::ACCESS_W, 0, 1).flags(specflag::ACCESS).mode_arg(2);
    "faccessat2" => SYS_faccessat2: S::path(op::ACCESS_W, 0, 1).flags(specflag::ACCESS).mode_arg(2);
    // Writes are accounted at exit with the bytes they returned; only
    // `fallocate`, which returns 0, names its length (`mode_arg`).
    "write" => SYS_write: S(SyscallSpec { fd_arg: 0, ..S::new(op::WRITE, argkind::WRITE).0 });
    "pwrite64" => SYS_pwrite64: S(SyscallSpec { fd_arg: 0, ..S::new(op::WRITE, argkind::WRITE).0 });
    "writev" => SYS_writev: S(SyscallSpec { fd_arg: 0, ..S::new(op::WRITE, argkind::WRITE).0 });
    "pwritev" => SYS_pwritev: S(SyscallSpec { fd_arg: 0, ..S::new(op::WRITE, argkind::WRITE).0 });
    "pwritev2" => SYS_pwritev2: S(SyscallSpec { fd_arg: 0, ..S::new(op::WRITE, argkind::WRITE).0 });
    "copy_file_range" => SYS_copy_file_range: S(SyscallSpec { fd_arg: 2, ..S::new(op::WRITE, argkind::WRITE).0 });
    "sendfile" => SYS_sendfile: S(SyscallSpec { fd_arg: 0, ..S::new(op::WRITE, argkind::WRITE).0 });
    "splice" => SYS_splice: S(SyscallSpec { fd_arg: 2, ..S::new(op::WRITE, argkind::WRITE).0 });
    "fallocate" => SYS_fallocate: S(SyscallSpec { fd_arg: 0, mode_arg: 3, ..S::new(op::WRITE, argkind::WRITE).0 });
    "fsync" => SYS_fsync: S(SyscallSpec { fd_arg: 0, ..S::new(op::FSYNC, argkind::FSYNC).0 });
    "fdatasync" => SYS_fdatasync: S(SyscallSpec { fd_arg: 0, ..S::new(op::FSYNC, argkind::FSYNC).0 });
    // Successful execs are recorded by `sched_process_exec` (the binary and,
    // for a script, the script); these record failures (EACCES on a
    // `noexec` mount, ENOENT).
    "execve" => SYS_execve: S::path(op::EXEC, N, 0);
    "execveat" => SYS_execveat: S::path(op::EXEC, 0, 1).flags(specflag::EMPTY_IS_FD).flags_arg(4);
    // Counted only: writes submitted through a ring are not seen by the
    // syscall hooks, and the report says so. (The op code is not used.)
    "io_uring_setup" => SYS_io_uring_setup: S::new(op::WRITE, argkind::URING);
    "mmap" => SYS_mmap: S(SyscallSpec { fd_arg: 4, ..S::new(op::MMAP_EXEC, argkind::MMAP).0 });
    // Timed waits and armed timers: when each is due goes to `WAKEUPS`, for
    // the settle window (no op: nothing is recorded as an operation). A
    // wait's deadline is read from its sleep timer (`hrtimer_start`), so
    // the waits differ only in their names; their exit clears the entry.
    // `restart_syscall` resumes a sleep a signal interrupted.
    "nanosleep" => SYS_nanosleep: S::wait(waitkind::SLEEP);
    "clock_nanosleep" => SYS_clock_nanosleep: S::wait(waitkind::SLEEP);
    "restart_syscall" => SYS_restart_syscall: S::wait(waitkind::SLEEP);
    #[cfg(target_arch = "x86_64")]
    "select" => SYS_select: S::wait(waitkind::SLEEP);
    "pselect6" => SYS_pselect6: S::wait(waitkind::SLEEP);
    #[cfg(target_arch = "x86_64")]
    "poll" => SYS_poll: S::wait(waitkind::SLEEP);
    "ppoll" => SYS_ppoll: S::wait(waitkind::SLEEP);
    #[cfg(target_arch = "x86_64")]
    "epoll_wait" => SYS_epoll_wait: S::wait(waitkind::SLEEP);
    "epoll_pwait" => SYS_epoll_pwait: S::wait(waitkind::SLEEP);
    "epoll_pwait2" => SYS_epoll_pwait2: S::wait(waitkind::SLEEP);
    "futex" => SYS_futex: S::wait(waitkind::SLEEP);
    "timerfd_settime" => SYS_timerfd_settime: S::wait(waitkind::TIMERFD_SETTIME);
    #[cfg(target_arch = "x86_64")]
    "alarm" => SYS_alarm: S::wait(waitkind::ALARM);
    "setitimer" => SYS_setitimer: S::wait(waitkind::SETITIMER);
}

/// The name of hooked syscall `nr` on this architecture.
#[must_use]
pub fn name_of(nr: i64) -> Option<&'static str> {
    hooks().into_iter().find(|h| h.nr == nr).map(|h| h.name)
}

/// The name of syscall `nr` when it is a timed wait ([`waitkind::SLEEP`]).
#[must_use]
pub fn wait_name(nr: i64) -> Option<&'static str> {
    hooks()
        .into_iter()
        .find(|h| h.nr == nr && h.spec.argkind == argkind::WAIT && h.spec.flags == waitkind::SLEEP)
        .map(|h| h.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_unique_and_fit_the_spec_map() {
        let hs = hooks();
        let mut nrs: Vec<i64> = hs.iter().map(|h| h.nr).collect();
        nrs.sort_unstable();
        nrs.dedup();
        assert_eq!(nrs.len(), hs.len(), "two hooks share a syscall number");
        assert!(
            nrs.iter()
                .all(|n| (0..i64::from(profiler_common::SPECS_LEN)).contains(n)),
            "SPECS holds SPECS_LEN entries"
        );
    }

    #[test]
    fn only_the_waits_are_named_as_waits() {
        assert_eq!(
            wait_name(libc::SYS_clock_nanosleep),
            Some("clock_nanosleep")
        );
        assert_eq!(wait_name(libc::SYS_futex), Some("futex"));
        assert_eq!(wait_name(libc::SYS_setitimer), None, "an armed timer");
        assert_eq!(wait_name(libc::SYS_openat), None);
        assert_eq!(wait_name(libc::SYS_ioctl), None, "not hooked");
    }

    #[test]
    fn two_path_ops_name_their_second_path() {
        for h in hooks() {
            if h.spec.flags & specflag::TWO_PATHS != 0 {
                assert_ne!(h.spec.name2_arg, NO_ARG, "{} lacks its second name", h.name);
            }
        }
    }
}
