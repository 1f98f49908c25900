//! `cargo xtask images`: the fixture images, one per directory under
//! `tests/fixtures/`, each labelled with a hash of its definition so that an
//! unchanged fixture is never rebuilt.

use std::{
    fs,
    io::Read as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};
use sha2::{Digest as _, Sha256};

use crate::{cmd, rootfs, step, workspace_root};

/// The label carrying a fixture's definition hash.
pub const HASH_LABEL: &str = "roprof.fixture.hash";

/// How a fixture's image is made.
#[derive(Clone, Copy)]
enum Recipe {
    /// `docker import` of a busybox rootfs assembled by xtask.
    BusyboxRootfs,
    /// `docker import` of a debootstrap rootfs configured by the directory's
    /// `debootstrap.conf`.
    Debootstrap,
    /// `docker build` of the directory's Dockerfile, FROM another fixture.
    /// Every `X.c` in the directory is compiled on the host with
    /// `gcc -static -O2` into `X` in the build context.
    Dockerfile { base: &'static str },
}

struct Fixture {
    name: &'static str,
    recipe: Recipe,
    /// Built only when asked for by name (`cargo xtask bench` does), not
    /// by `setup`, `test` or a bare `cargo xtask images`: for images only
    /// the bench or the reports need. (The server images are not: the privileged tests
    /// run their rendered outputs.)
    on_demand: bool,
}

/// In dependency order: a base comes before the fixtures built FROM it.
const FIXTURES: &[Fixture] = &[
    Fixture {
        name: "busybox",
        recipe: Recipe::BusyboxRootfs,
        on_demand: false,
    },
    Fixture {
        name: "writer",
        recipe: Recipe::Dockerfile { base: "busybox" },
        on_demand: false,
    },
    Fixture {
        name: "traps",
        recipe: Recipe::Dockerfile { base: "busybox" },
        on_demand: false,
    },
    // `roprof check`'s versions of one image (tests/tests/check.rs).
    Fixture {
        name: "gate-v1",
        recipe: Recipe::Dockerfile { base: "busybox" },
        on_demand: false,
    },
    Fixture {
        name: "gate-v2",
        recipe: Recipe::Dockerfile { base: "busybox" },
        on_demand: false,
    },
    Fixture {
        name: "gate-v3",
        recipe: Recipe::Dockerfile { base: "busybox" },
        on_demand: false,
    },
    Fixture {
        name: "gate-v4",
        recipe: Recipe::Dockerfile { base: "busybox" },
        on_demand: false,
    },
    Fixture {
        name: "steps",
        recipe: Recipe::Dockerfile { base: "busybox" },
        on_demand: false,
    },
    Fixture {
        name: "supervised",
        recipe: Recipe::Dockerfile { base: "busybox" },
        on_demand: false,
    },
    Fixture {
        name: "debian",
        recipe: Recipe::Debootstrap,
        on_demand: false,
    },
    Fixture {
        name: "nginx",
        recipe: Recipe::Dockerfile { base: "debian" },
        on_demand: false,
    },
    Fixture {
        name: "confgen",
        recipe: Recipe::Dockerfile { base: "nginx" },
        on_demand: false,
    },
    // The privileged tests run the rendered outputs of every server image
    // (tests/tests/rendered.rs), so setup builds them too.
    Fixture {
        name: "redis",
        recipe: Recipe::Dockerfile { base: "debian" },
        on_demand: false,
    },
    Fixture {
        name: "memcached",
        recipe: Recipe::Dockerfile { base: "debian" },
        on_demand: false,
    },
    Fixture {
        name: "apache2",
        recipe: Recipe::Dockerfile { base: "debian" },
        on_demand: false,
    },
    Fixture {
        name: "postgresql",
        recipe: Recipe::Dockerfile { base: "debian" },
        on_demand: false,
    },
    // nginx with its load generator, for `cargo xtask bench` alone.
    Fixture {
        name: "nginx-wrk",
        recipe: Recipe::Dockerfile { base: "nginx" },
        on_demand: true,
    },
];

/// Bumped when the code of a recipe changes in a way that changes images, so
/// that existing images are rebuilt.
const RECIPE_VERSION: &str = "1";

pub fn image_name(fixture: &str) -> String {
    format!("roprof-fixture/{fixture}:latest")
}

/// The images `setup` builds (every fixture but the on-demand ones).
pub fn default_images() -> Vec<String> {
    FIXTURES
        .iter()
        .filter(|f| !f.on_demand)
        .map(|f| image_name(f.name))
        .collect()
}

fn fixture(name: &str) -> Result<&'static Fixture> {
    FIXTURES.iter().find(|f| f.name == name).with_context(|| {
        let known: Vec<_> = FIXTURES.iter().map(|f| f.name).collect();
        format!("no fixture `{name}` (known: {})", known.join(", "))
    })
}

pub fn fixtures_dir() -> PathBuf {
    workspace_root().join("tests/fixtures")
}

/// Scratch space for build contexts and rootfs tarballs (gitignored).
pub fn cache_dir() -> PathBuf {
    fixtures_dir().join(".cache")
}

/// Builds the named fixtures (when `names` is empty: all but the on-demand
/// ones) and their bases.
pub fn build(names: &[String], force: bool) -> Result<()> {
    let wanted: Vec<&Fixture> = if names.is_empty() {
        FIXTURES.iter().filter(|f| !f.on_demand).collect()
    } else {
        let mut closure = Vec::new();
        for name in names {
            let mut f = fixture(name)?;
            loop {
                closure.push(f.name);
                match f.recipe {
                    Recipe::Dockerfile { base } => f = fixture(base)?,
                    _ => break,
                }
            }
        }
        FIXTURES
            .iter()
            .filter(|f| closure.contains(&f.name))
            .collect()
    };
    for f in wanted {
        let image = image_name(f.name);
        step(&format!("image {image}"), || ensure_image(f, &image, force))?;
    }
    Ok(())
}

fn ensure_image(f: &Fixture, image: &str, force: bool) -> Result<String> {
    let hash = fixture_hash(f)?;
    let short = &hash[..12];
    let current = current_hash(image)?;
    if !force && current.as_deref() == Some(hash.as_str()) {
        return Ok(format!("ok (already present, hash {short})"));
    }
    let dir = fixtures_dir().join(f.name);
    match f.recipe {
        Recipe::BusyboxRootfs => rootfs::import_busybox(&dir, image, &hash)?,
        Recipe::Debootstrap => rootfs::import_debootstrap(&dir, image, &hash)?,
        Recipe::Dockerfile { .. } => docker_build(f, &dir, image, &hash, force)?,
    }
    let why = match current {
        _ if force => "forced",
        None => "was missing",
        Some(_) => "definition changed",
    };
    Ok(format!("built ({why}, hash {short})"))
}

/// The hash label of `image`, or `None` when there is no such image.
fn current_hash(image: &str) -> Result<Option<String>> {
    let out = cmd::output(&mut cmd::docker([
        "image",
        "inspect",
        "--format",
        &format!("{{{{ index .Config.Labels \"{HASH_LABEL}\" }}}}"),
        image,
    ]))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No such image") || err.contains("No such object") {
            return Ok(None);
        }
        bail!("docker image inspect {image} failed: {}", err.trim());
    }
    let label = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Ok((!label.is_empty() && label != "<no value>").then_some(label))
}

/// SHA-256 over the fixture's directory, its recipe, what the recipe takes
/// from the host (the busybox binary), and its base's hash.
fn fixture_hash(f: &Fixture) -> Result<String> {
    let mut h = Sha256::new();
    h.update(format!(
        "roprof-fixture {} recipe {RECIPE_VERSION}\0",
        f.name
    ));
    hash_dir(&mut h, &fixtures_dir().join(f.name))?;
    match f.recipe {
        Recipe::BusyboxRootfs => {
            h.update(b"busybox-rootfs\0");
            hash_file(&mut h, &rootfs::busybox_binary()?)?;
        }
        Recipe::Debootstrap => h.update(b"debootstrap\0"),
        Recipe::Dockerfile { base } => {
            h.update(b"dockerfile\0");
            h.update(fixture_hash(fixture(base)?)?);
        }
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Feeds every entry under `dir` into `h`, in a fixed order: relative path,
/// type, executable bit, and contents (or symlink target).
fn hash_dir(h: &mut Sha256, dir: &Path) -> Result<()> {
    fn walk(h: &mut Sha256, root: &Path, dir: &Path) -> Result<()> {
        let mut entries: Vec<PathBuf> = fs::read_dir(dir)
            .with_context(|| format!("listing {}", dir.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .with_context(|| format!("listing {}", dir.display()))?;
        entries.sort();
        for path in entries {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            h.update(rel.as_os_str().as_encoded_bytes());
            let meta =
                fs::symlink_metadata(&path).with_context(|| format!("stat {}", path.display()))?;
            if meta.is_symlink() {
                h.update(b"\0link\0");
                let target = fs::read_link(&path)?;
                h.update(target.as_os_str().as_encoded_bytes());
            } else if meta.is_dir() {
                h.update(b"\0dir\0");
                walk(h, root, &path)?;
            } else {
                let exec = meta.permissions().mode() & 0o111 != 0;
                h.update(if exec { b"\0exec\0" } else { b"\0file\0" });
                hash_file(h, &path)?;
            }
            h.update(b"\0end\0");
        }
        Ok(())
    }
    walk(h, dir, dir)
}

fn hash_file(h: &mut Sha256, path: &Path) -> Result<()> {
    let mut file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.update(fs::metadata(path)?.len().to_le_bytes());
    Ok(())
}

/// Copies the definition into a fresh build context, compiles its C sources,
/// and runs `docker build` with the hash label.
fn docker_build(f: &Fixture, dir: &Path, image: &str, hash: &str, force: bool) -> Result<()> {
    let ctx = cache_dir().join("context").join(f.name);
    if ctx.exists() {
        fs::remove_dir_all(&ctx).with_context(|| format!("removing {}", ctx.display()))?;
    }
    fs::create_dir_all(&ctx).with_context(|| format!("creating {}", ctx.display()))?;
    let mut sources = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        let Some(name) = path.file_name() else {
            continue;
        };
        if path.is_file() {
            fs::copy(&path, ctx.join(name))
                .with_context(|| format!("copying {} into the build context", path.display()))?;
            if path.extension().is_some_and(|e| e == "c") {
                sources.push(path);
            }
        }
    }
    if !sources.is_empty() {
        cmd::ensure_program("gcc", &["gcc", "libc6-dev"], "compiling fixture C programs")?;
    }
    for src in sources {
        let out = ctx.join(src.file_stem().context("C source without a stem")?);
        cmd::run(
            Command::new("gcc")
                .args(["-static", "-O2", "-Wall", "-o"])
                .arg(&out)
                .arg(&src),
        )
        .with_context(|| format!("compiling {}", src.display()))?;
    }

    let build = |host_network: bool| {
        let mut c = cmd::docker(["build", "--label"]);
        c.arg(format!("{HASH_LABEL}={hash}")).args(["--tag", image]);
        if force {
            c.arg("--no-cache");
        }
        if host_network {
            c.args(["--network", "host"]);
        }
        // The classic builder: it is what engine 20.10 runs without the
        // buildx plugin, and it takes FROM images from the local store
        // without asking a registry.
        c.env("DOCKER_BUILDKIT", "0").arg(&ctx);
        cmd::run(&mut c)
    };
    if let Err(err) = build(false) {
        eprintln!(
            "xtask: docker build of {image} failed ({err:#}); retrying with --network host \
             in case the bridge network cannot reach the package mirror"
        );
        build(true).with_context(|| format!("docker build of {image}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_has_a_directory_and_bases_come_first() {
        for (i, f) in FIXTURES.iter().enumerate() {
            let dir = fixtures_dir().join(f.name);
            assert!(
                dir.is_dir(),
                "fixture {} has no directory {}",
                f.name,
                dir.display()
            );
            if let Recipe::Dockerfile { base } = f.recipe {
                let base_pos = FIXTURES.iter().position(|b| b.name == base);
                assert!(
                    base_pos.is_some_and(|p| p < i),
                    "base {base} of {} must be listed before it",
                    f.name
                );
                assert!(
                    dir.join("Dockerfile").is_file(),
                    "{} needs a Dockerfile",
                    f.name
                );
            }
        }
    }

    #[test]
    fn dir_hash_depends_on_contents_and_names() {
        let base = std::env::temp_dir().join(format!("xtask-hash-{}", std::process::id()));
        let digest = |d: &Path| {
            let mut h = Sha256::new();
            hash_dir(&mut h, d).expect("hash_dir on a test directory");
            hex(&h.finalize())
        };
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("sub")).unwrap();
        fs::write(base.join("a"), "one").unwrap();
        fs::write(base.join("sub/b"), "two").unwrap();
        let first = digest(&base);
        assert_eq!(
            first,
            digest(&base),
            "hashing twice must give the same digest"
        );
        fs::write(base.join("a"), "ONE").unwrap();
        let changed = digest(&base);
        assert_ne!(
            first, changed,
            "changing a file's contents must change the hash"
        );
        fs::rename(base.join("sub/b"), base.join("sub/c")).unwrap();
        assert_ne!(
            changed,
            digest(&base),
            "renaming a file must change the hash"
        );
        fs::remove_dir_all(&base).unwrap();
    }
}
