//! Reads kernel struct member offsets from the running kernel's BTF
//! (`/sys/kernel/btf/vmlinux`), so no kernel's layout is baked into roprof.
//!
//! Only what the tracer needs is parsed: struct/union members, following
//! typedef/const/volatile, and anonymous members (offsets summed).

use std::collections::HashMap;

use profiler_common::{ARG_OUTSIDE_WINDOW, Offsets, SYS_WINDOW_WORDS};

/// Errors reading BTF.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    /// The BTF file could not be read.
    #[error(
        "cannot read kernel BTF at {path}: {source} (roprof needs a kernel built with CONFIG_DEBUG_INFO_BTF=y)"
    )]
    Read {
        /// Path tried.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The data is not BTF.
    #[error("kernel BTF is malformed: {0}")]
    Malformed(&'static str),
    /// A struct or member the tracer needs is missing.
    #[error(
        "kernel BTF has no member `{member}` in `struct {strukt}`: this kernel layout is not supported"
    )]
    Missing {
        /// Struct.
        strukt: String,
        /// Member.
        member: String,
    },
}

const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;
const KIND_RESTRICT: u32 = 11;

#[derive(Clone, Debug)]
struct Member {
    name: u32,
    ty: u32,
    bit_offset: u32,
}

#[derive(Clone, Debug)]
struct Type {
    name: u32,
    kind: u32,
    next: u32,
    members: Vec<Member>,
}

/// The word index of `pt_regs` member offset `off` in the window read at
/// `sys_exit` from `base` ([`ARG_OUTSIDE_WINDOW`] when it is not in it).
#[must_use]
pub fn window_index(base: u64, off: u64) -> u64 {
    let words = SYS_WINDOW_WORDS as u64;
    if off >= base && (off - base).is_multiple_of(8) && (off - base) / 8 < words {
        (off - base) / 8
    } else {
        ARG_OUTSIDE_WINDOW
    }
}

/// Parsed kernel BTF (types and strings).
pub struct Btf {
    strings: Vec<u8>,
    types: Vec<Type>,
    by_name: HashMap<String, Vec<u32>>,
}

fn u32_at(d: &[u8], off: usize) -> Result<u32, BtfError> {
    d.get(off..off + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(BtfError::Malformed("truncated"))
}

impl Btf {
    /// Loads `/sys/kernel/btf/vmlinux`.
    pub fn from_sys_fs() -> Result<Self, BtfError> {
        let path = "/sys/kernel/btf/vmlinux";
        let data = std::fs::read(path).map_err(|source| BtfError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(&data)
    }

    /// Parses raw little-endian BTF.
    pub fn parse(d: &[u8]) -> Result<Self, BtfError> {
        if d.len() < 24 || d[0..2] != [0x9f, 0xeb] {
            return Err(BtfError::Malformed(
                "bad magic (big-endian BTF is not supported)",
            ));
        }
        let hdr_len = u32_at(d, 4)? as usize;
        let type_off = u32_at(d, 8)? as usize;
        let type_len = u32_at(d, 12)? as usize;
        let str_off = u32_at(d, 16)? as usize;
        let str_len = u32_at(d, 20)? as usize;
        let strings = d
            .get(hdr_len + str_off..hdr_len + str_off + str_len)
            .ok_or(BtfError::Malformed("string section out of range"))?
            .to_vec();
        let tdata = d
            .get(hdr_len + type_off..hdr_len + type_off + type_len)
            .ok_or(BtfError::Malformed("type section out of range"))?;
        // Type id 0 is void.
        let mut types = vec![Type {
            name: 0,
            kind: 0,
            next: 0,
            members: vec![],
        }];
        let mut p = 0usize;
        while p + 12 <= tdata.len() {
            let name = u32_at(tdata, p)?;
            let info = u32_at(tdata, p + 4)?;
            let size_or_type = u32_at(tdata, p + 8)?;
            p += 12;
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let kflag = info >> 31 == 1;
            let mut members = Vec::new();
            match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => p += 4,
                KIND_ARRAY => p += 12,
                KIND_STRUCT | KIND_UNION => {
                    for i in 0..vlen {
                        let m = p + i * 12;
                        let off = u32_at(tdata, m + 8)?;
                        members.push(Member {
                            name: u32_at(tdata, m)?,
                            ty: u32_at(tdata, m + 4)?,
                            bit_offset: if kflag { off & 0x00ff_ffff } else { off },
                        });
                    }
                    p += vlen * 12;
                }
                KIND_ENUM | KIND_FUNC_PROTO => p += vlen * 8,
                KIND_DATASEC | KIND_ENUM64 => p += vlen * 12,
                _ => {}
            }
            types.push(Type {
                name,
                kind,
                next: size_or_type,
                members,
            });
        }
        let mut btf = Btf {
            strings,
            types,
            by_name: HashMap::new(),
        };
        for (id, t) in btf.types.iter().enumerate() {
            if matches!(t.kind, KIND_STRUCT | KIND_UNION) && t.name != 0 {
                let n = btf.str_at(t.name).to_owned();
                // Type ids are u32 in the format itself, so the index fits.
                let id =
                    u32::try_from(id).map_err(|_| BtfError::Malformed("more than 2^32 types"))?;
                btf.by_name.entry(n).or_default().push(id);
            }
        }
        Ok(btf)
    }

    fn str_at(&self, off: u32) -> &str {
        let s = self.strings.get(off as usize..).unwrap_or_default();
        let end = s.iter().position(|b| *b == 0).unwrap_or(s.len());
        std::str::from_utf8(&s[..end]).unwrap_or("")
    }

    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.types.get(id as usize) {
                Some(t)
                    if matches!(
                        t.kind,
                        KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
                    ) =>
                {
                    id = t.next;
                }
                _ => break,
            }
        }
        id
    }

    fn find_in(&self, id: u32, member: &str, depth: u32) -> Option<u32> {
        let t = self.types.get(self.resolve(id) as usize)?;
        for m in &t.members {
            if m.name != 0 && self.str_at(m.name) == member {
                return Some(m.bit_offset / 8);
            }
        }
        if depth > 8 {
            return None;
        }
        // Anonymous struct/union members (e.g. `qstr.len` inside `hash_len`,
        // task_struct fields behind randomized-layout wrappers).
        for m in &t.members {
            if m.name == 0
                && let Some(off) = self.find_in(m.ty, member, depth + 1)
            {
                return Some(m.bit_offset / 8 + off);
            }
        }
        None
    }

    /// Byte offset of `member` in `struct strukt`; the first member name
    /// found among `member_alternatives` wins (fields renamed across kernels).
    pub fn offset_of(&self, strukt: &str, member_alternatives: &[&str]) -> Result<u64, BtfError> {
        let missing = || BtfError::Missing {
            strukt: strukt.into(),
            member: member_alternatives.join("|"),
        };
        let ids = self.by_name.get(strukt).ok_or_else(missing)?;
        for id in ids {
            for m in member_alternatives {
                if let Some(off) = self.find_in(*id, m, 0) {
                    return Ok(u64::from(off));
                }
            }
        }
        Err(missing())
    }

    /// Where the six syscall arguments live in `struct pt_regs` at
    /// `sys_exit`: the base of a 64-byte window and each argument's word
    /// index in it ([`ARG_OUTSIDE_WINDOW`] for one read from its own member,
    /// [`Offsets::sys_arg0_exit`]).
    fn syscall_regs(&self) -> Result<(u64, [u64; 6]), BtfError> {
        let (base, offs): (u64, [Option<u64>; 6]) = if cfg!(target_arch = "x86_64") {
            // The syscall ABI: rdi, rsi, rdx, r10, r8, r9, none of which
            // the syscall changes.
            let mut o = [None; 6];
            for (slot, reg) in o.iter_mut().zip(["di", "si", "dx", "r10", "r8", "r9"]) {
                *slot = Some(self.offset_of("pt_regs", &[reg])?);
            }
            (o.iter().flatten().copied().min().unwrap_or(0), o)
        } else {
            // arm64: x0..x5 = regs[0..5], but x0 holds the return value at
            // exit: argument 0 is read from orig_x0.
            let base = self.offset_of("pt_regs", &["regs"])?;
            let at = |i: u64| Some(base + 8 * i);
            (base, [None, at(1), at(2), at(3), at(4), at(5)])
        };
        let mut idx = [ARG_OUTSIDE_WINDOW; 6];
        for (i, o) in idx.iter_mut().zip(offs) {
            let Some(o) = o else { continue };
            *i = window_index(base, o);
            if *i == ARG_OUTSIDE_WINDOW {
                return Err(BtfError::Missing {
                    strukt: "pt_regs".into(),
                    member: format!("syscall argument registers within {SYS_WINDOW_WORDS} words"),
                });
            }
        }
        Ok((base, idx))
    }

    /// The compat-syscall flag: x86 `thread_info.status & TS_COMPAT`, arm64
    /// `thread_info.flags & _TIF_32BIT`. (0, 0) when not found.
    fn compat_flag(&self) -> (u64, u64) {
        let Ok(ti) = self.offset_of("task_struct", &["thread_info"]) else {
            return (0, 0);
        };
        if cfg!(target_arch = "x86_64") {
            self.offset_of("thread_info", &["status"])
                .map_or((0, 0), |s| (ti + s, 0x2))
        } else {
            self.offset_of("thread_info", &["flags"])
                .map_or((0, 0), |f| (ti + f, 1 << 22))
        }
    }

    /// All offsets the kernel side needs.
    pub fn offsets(&self) -> Result<Offsets, BtfError> {
        let qstr_name = self.offset_of("qstr", &["name"])?;
        let d_name = self.offset_of("dentry", &["d_name"])?;
        let (sys_regs_base, sys_regs_idx) = self.syscall_regs()?;
        let (compat_off, compat_mask) = self.compat_flag();
        Ok(Offsets {
            sys_regs_base,
            sys_regs_idx,
            compat_off,
            compat_mask,
            task_fs: self.offset_of("task_struct", &["fs"])?,
            task_files: self.offset_of("task_struct", &["files"])?,
            task_mm: self.offset_of("task_struct", &["mm"])?,
            task_real_parent: self.offset_of("task_struct", &["real_parent"])?,
            task_tgid: self.offset_of("task_struct", &["tgid"])?,
            fs_root: self.offset_of("fs_struct", &["root"])?,
            fs_pwd: self.offset_of("fs_struct", &["pwd"])?,
            path_mnt: self.offset_of("path", &["mnt"])?,
            path_dentry: self.offset_of("path", &["dentry"])?,
            dentry_parent: self.offset_of("dentry", &["d_parent"])?,
            dentry_name: d_name + qstr_name,
            dentry_inode: self.offset_of("dentry", &["d_inode"])?,
            mount_mnt: self.offset_of("mount", &["mnt"])?,
            mount_parent: self.offset_of("mount", &["mnt_parent"])?,
            mount_mountpoint: self.offset_of("mount", &["mnt_mountpoint"])?,
            vfsmount_root: self.offset_of("vfsmount", &["mnt_root"])?,
            files_fdt: self.offset_of("files_struct", &["fdt"])?,
            fdt_max_fds: self.offset_of("fdtable", &["max_fds"])?,
            fdt_fd: self.offset_of("fdtable", &["fd"])?,
            file_path: self.offset_of("file", &["f_path", "__f_path"])?,
            file_inode: self.offset_of("file", &["f_inode"])?,
            inode_size: self.offset_of("inode", &["i_size"])?,
            mm_exe_file: self.offset_of("mm_struct", &["exe_file"])?,
            file_mode: self.offset_of("file", &["f_mode"])?,
            inode_mode: self.offset_of("inode", &["i_mode"])?,
            dentry_hash_len: d_name + self.offset_of("qstr", &["hash_len"])?,
            bprm_filename: self.offset_of("linux_binprm", &["filename"])?,
            bprm_interp: self.offset_of("linux_binprm", &["interp"])?,
            cgroup_kn: self.offset_of("cgroup", &["kn"])?,
            kernfs_id: self.offset_of("kernfs_node", &["id"])?,
            cgroup_root: self.offset_of("cgroup", &["root"])?,
            cgroup_root_hierarchy_id: self.offset_of("cgroup_root", &["hierarchy_id"])?,
            task_nsproxy: self.offset_of("task_struct", &["nsproxy"])?,
            nsproxy_mnt_ns: self.offset_of("nsproxy", &["mnt_ns"])?,
            mnt_ns_inum: self.offset_of("mnt_namespace", &["ns"])?
                + self.offset_of("ns_common", &["inum"])?,
            kernfs_name: self.offset_of("kernfs_node", &["name"])?,
            kernfs_parent: self.offset_of("kernfs_node", &["__parent", "parent"])?,
            task_exit_code: self.offset_of("task_struct", &["exit_code"])?,
            sys_nr_exit: self.offset_of("pt_regs", &["orig_ax", "syscallno"])?,
            sys_arg0_exit: if cfg!(target_arch = "x86_64") {
                self.offset_of("pt_regs", &["di"])?
            } else {
                self.offset_of("pt_regs", &["orig_x0"])?
            },
            hrtimer_softexpires: self.offset_of("hrtimer", &["_softexpires"])?,
            hrtimer_function: self.offset_of("hrtimer", &["function"])?,
            hrtimer_base: self.offset_of("hrtimer", &["base"])?,
            clock_base_clockid: self.offset_of("hrtimer_clock_base", &["clockid"])?,
            sleeper_task: self.offset_of("hrtimer_sleeper", &["task"])?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_btf() {
        assert!(matches!(
            Btf::parse(&[0u8; 64]),
            Err(BtfError::Malformed(_))
        ));
    }

    /// Reads this machine's BTF when present; offsets must be distinct and
    /// plausible. Skipped (with a message) where the kernel has no BTF, since
    /// this is a unit test; the privileged suite exercises the real load.
    #[test]
    fn host_btf_offsets_are_plausible() {
        let Ok(btf) = Btf::from_sys_fs() else {
            eprintln!("no /sys/kernel/btf/vmlinux here; covered by the privileged suite");
            return;
        };
        let o = btf.offsets().expect("offsets from host BTF");
        assert_eq!(o.path_mnt, 0, "struct path starts with mnt");
        if cfg!(target_arch = "x86_64") {
            // pt_regs: r10 at 56, r9 64, r8 72, dx 96, si 104, di 112.
            assert_eq!(o.sys_regs_base, 56, "the window starts at r10");
            assert_eq!(o.sys_regs_idx, [7, 6, 5, 0, 2, 1], "di si dx r10 r8 r9");
            assert_eq!(
                window_index(o.sys_regs_base, o.sys_nr_exit),
                8,
                "orig_ax follows di: one read serves the number and the arguments"
            );
            assert_eq!(o.compat_mask, 2, "TS_COMPAT");
        }
        assert_eq!(o.path_dentry, 8, "struct path: dentry follows mnt");
        assert!(o.kernfs_id > 0 && o.cgroup_kn != o.cgroup_root);
        assert!(o.task_fs > 0 && o.task_files > 0 && o.task_fs != o.task_files);
        // struct hrtimer { node (rb_node, expires), _softexpires, function,
        // base, ... }: the sleeper's task follows the whole hrtimer.
        assert_eq!(o.hrtimer_softexpires, 32, "after the timerqueue node");
        assert_eq!(
            (o.hrtimer_function, o.hrtimer_base),
            (40, 48),
            "function and base follow _softexpires"
        );
        assert!(o.sleeper_task >= 56, "task follows the embedded hrtimer");
        assert!(o.clock_base_clockid > 0, "clockid is not the first member");
    }
}
