//! Base images made from a root filesystem with `docker import`: a busybox
//! rootfs assembled here as a tarball, and a Debian one from debootstrap.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    io::{BufWriter, Write as _},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{
    cmd,
    images::{HASH_LABEL, cache_dir},
};

/// The static busybox the busybox fixture is made of (Debian's
/// `busybox-static`; merged /usr makes /bin and /usr/bin the same).
const BUSYBOX: &str = "/bin/busybox";

/// A fixed mtime for the generated tarball, so the same inputs make the same
/// bytes.
const MTIME: u64 = 1_700_000_000;

/// Returns the static busybox binary, installing `busybox-static` when it is
/// missing or the installed busybox is dynamically linked (it would not run
/// in an image without a libc).
pub fn busybox_binary() -> Result<PathBuf> {
    let path = PathBuf::from(BUSYBOX);
    let is_static = || fs::read(&path).ok().and_then(|elf| elf_is_static(&elf));
    if is_static() != Some(true) {
        cmd::apt_install(&["busybox-static"], "the busybox fixture image")?;
        match is_static() {
            Some(true) => {}
            Some(false) => {
                bail!("{BUSYBOX} is still dynamically linked after installing busybox-static")
            }
            None => {
                bail!("{BUSYBOX} is missing or not an ELF file after installing busybox-static")
            }
        }
    }
    Ok(path)
}

/// Whether a 64-bit little-endian ELF file has no `PT_INTERP` program header
/// (no dynamic loader); `None` if it is not such an ELF file.
fn elf_is_static(elf: &[u8]) -> Option<bool> {
    const PT_INTERP: u32 = 3;
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(elf.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?));
    // ELFCLASS64, ELFDATA2LSB
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    for i in 0..phnum {
        if u32_at(phoff + i * phentsize)? == PT_INTERP {
            return Some(false);
        }
    }
    Some(true)
}

/// Builds the busybox rootfs tarball and imports it as `image`.
pub fn import_busybox(dir: &Path, image: &str, hash: &str) -> Result<()> {
    let busybox = busybox_binary()?;
    let applets = cmd::stdout(Command::new(&busybox).arg("--list-full"))?;
    let tarball = cache_dir().join("busybox-rootfs.tar");
    fs::create_dir_all(cache_dir())?;
    write_busybox_tar(&tarball, &busybox, &applets, dir)?;
    docker_import(&tarball, image, hash, &["CMD [\"/bin/sh\"]"])
}

fn write_busybox_tar(tarball: &Path, busybox: &Path, applets: &str, dir: &Path) -> Result<()> {
    let file =
        fs::File::create(tarball).with_context(|| format!("creating {}", tarball.display()))?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    let dirs: &[(&str, u32, u64)] = &[
        ("bin", 0o755, 0),
        ("dev", 0o755, 0),
        ("etc", 0o755, 0),
        ("home", 0o755, 0),
        ("home/app", 0o750, 1000),
        ("proc", 0o555, 0),
        ("root", 0o700, 0),
        ("run", 0o755, 0),
        ("sbin", 0o755, 0),
        ("sys", 0o555, 0),
        ("tmp", 0o1777, 0),
        ("usr", 0o755, 0),
        ("usr/bin", 0o755, 0),
        ("usr/local", 0o755, 0),
        ("usr/local/bin", 0o755, 0),
        ("usr/sbin", 0o755, 0),
        ("var", 0o755, 0),
        ("var/tmp", 0o1777, 0),
    ];
    for &(path, mode, owner) in dirs {
        let mut h = header(tar::EntryType::Directory, mode, owner);
        tar.append_data(&mut h, path, std::io::empty())
            .with_context(|| format!("adding /{path}"))?;
    }

    let bin = fs::read(busybox).with_context(|| format!("reading {}", busybox.display()))?;
    let mut h = header(tar::EntryType::Regular, 0o755, 0);
    h.set_size(bin.len() as u64);
    tar.append_data(&mut h, "bin/busybox", bin.as_slice())?;

    for (path, contents) in [("etc/passwd", "passwd"), ("etc/group", "group")] {
        let src = dir.join(contents);
        let data = fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
        let mut h = header(tar::EntryType::Regular, 0o644, 0);
        h.set_size(data.len() as u64);
        tar.append_data(&mut h, path, data.as_slice())?;
    }

    // One absolute symlink per applet, where busybox itself would install
    // it; `linuxrc`, the one applet at the root, is for initramfs only.
    let links: BTreeSet<&str> = applets
        .lines()
        .map(|l| l.trim().trim_start_matches('/'))
        .filter(|l| l.contains('/') && *l != "bin/busybox")
        .collect();
    for path in links {
        let parent = Path::new(path).parent().unwrap_or(Path::new(""));
        if !dirs.iter().any(|(d, _, _)| Path::new(d) == parent) {
            bail!("busybox applet {path} is in a directory the rootfs does not have");
        }
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        tar.append_link(&mut h, path, "/bin/busybox")
            .with_context(|| format!("adding applet link /{path}"))?;
    }
    let mut out = tar.into_inner().context("finishing the busybox tarball")?;
    out.flush().context("writing the busybox tarball")?;
    Ok(())
}

fn header(kind: tar::EntryType, mode: u32, owner: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(owner);
    h.set_gid(owner);
    h.set_mtime(MTIME);
    h.set_size(0);
    h
}

/// debootstrap settings from `debootstrap.conf` (`key=value` lines).
struct Debootstrap {
    suite: String,
    variant: String,
    mirror: String,
}

fn read_debootstrap_conf(path: &Path) -> Result<Debootstrap> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut map = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .with_context(|| format!("{}: not key=value: {line}", path.display()))?;
        map.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    let mut get = |k: &str| {
        map.remove(k)
            .with_context(|| format!("{}: missing `{k}=`", path.display()))
    };
    Ok(Debootstrap {
        suite: get("suite")?,
        variant: get("variant")?,
        mirror: get("mirror")?,
    })
}

/// Runs debootstrap (unless a tarball for this hash is cached) and imports
/// the result as `image`.
pub fn import_debootstrap(dir: &Path, image: &str, hash: &str) -> Result<()> {
    let conf = read_debootstrap_conf(&dir.join("debootstrap.conf"))?;
    let cache = cache_dir();
    let tarball = cache.join(format!("debian-{}.tar", &hash[..16]));
    if tarball.is_file() {
        eprintln!("xtask: reusing {}", tarball.display());
    } else {
        if !cmd::is_root() {
            bail!("debootstrap needs root; run `cargo xtask images` as root");
        }
        cmd::ensure_program("debootstrap", &["debootstrap"], "the debian fixture image")?;
        let root = cache.join("debian-rootfs");
        if root.exists() {
            fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
        }
        fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        eprintln!("xtask: debootstrap takes a few minutes");
        cmd::run(
            Command::new("debootstrap")
                .arg(format!("--variant={}", conf.variant))
                .arg(&conf.suite)
                .arg(&root)
                .arg(&conf.mirror),
        )?;
        // Package lists and caches only bloat the image; the nginx fixture
        // runs `apt-get update` itself.
        for sub in ["var/lib/apt/lists", "var/cache/apt/archives"] {
            clear_dir(&root.join(sub), &["lock", "partial"])?;
        }
        let partial = cache.join("debian.tar.partial");
        // /dev, /proc and /sys come from the runtime; debootstrap's device
        // nodes there would only shadow them.
        cmd::run(
            Command::new("tar")
                .args(["--numeric-owner", "--xattrs", "--xattrs-include=*"])
                .args([
                    "--exclude=./dev/*",
                    "--exclude=./proc/*",
                    "--exclude=./sys/*",
                ])
                .arg("-C")
                .arg(&root)
                .arg("-cf")
                .arg(&partial)
                .arg("."),
        )?;
        fs::rename(&partial, &tarball)
            .with_context(|| format!("moving the tarball to {}", tarball.display()))?;
        fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
        // Older tarballs belong to older definitions.
        for entry in fs::read_dir(&cache)? {
            let path = entry?.path();
            let stale = path != tarball
                && path.extension().is_some_and(|e| e == "tar")
                && path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("debian-"));
            if stale {
                fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
    }
    docker_import(&tarball, image, hash, &["CMD [\"bash\"]"])
}

/// Removes everything in `dir` except the names in `keep`.
fn clear_dir(dir: &Path, keep: &[&str]) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| keep.contains(&n))
        {
            continue;
        }
        let removed = if path.is_dir() && !path.is_symlink() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

fn docker_import(tarball: &Path, image: &str, hash: &str, changes: &[&str]) -> Result<()> {
    let mut c = cmd::docker(["import"]);
    c.args(["--change", &format!("LABEL {HASH_LABEL}={hash}")])
        .args([
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ]);
    for change in changes {
        c.args(["--change", change]);
    }
    c.arg(tarball).arg(image);
    cmd::run(&mut c).with_context(|| format!("docker import of {image}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_static_and_dynamic_elf() {
        // The test binary itself is dynamically linked on Linux/glibc.
        let me = fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(
            elf_is_static(&me),
            Some(false),
            "the test binary has an interpreter"
        );
        assert_eq!(elf_is_static(b"#!/bin/sh\n"), None, "a script is not ELF");
        assert_eq!(
            elf_is_static(b"\x7fELF\x02\x01"),
            None,
            "a truncated header is not ELF"
        );
    }

    #[test]
    fn reads_debootstrap_conf() {
        let path = crate::images::fixtures_dir().join("debian/debootstrap.conf");
        let conf = read_debootstrap_conf(&path).expect("the debian fixture's config parses");
        assert_eq!(conf.variant, "minbase");
        assert!(
            conf.mirror.starts_with("http"),
            "mirror is a URL: {}",
            conf.mirror
        );
        assert!(!conf.suite.is_empty(), "suite is set");
    }
}
