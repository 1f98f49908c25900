//! containerd driven with `ctr`, as the containerd tests of `watch` and
//! `guard` do: Docker's own containerd, in a namespace of the test's own
//! into which fixture images are imported from Docker (`docker save |
//! ctr images import`); everything in it is removed with it.

use std::process::{Command, Output, Stdio};

/// Docker's own containerd, where the containerd tests run in a namespace
/// of their own.
pub const CONTAINERD_SOCKET: &str = "/var/run/docker/containerd/containerd.sock";

/// `ctr -a CONTAINERD_SOCKET -n NS ARGS`.
#[must_use]
pub fn ctr(ns: &str, args: &[&str]) -> Output {
    Command::new("ctr")
        .args(["-a", CONTAINERD_SOCKET, "-n", ns])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("expected ctr to run (cargo xtask setup installs it): {e}"))
}

/// [`ctr`] that must succeed; its stdout.
#[expect(
    clippy::must_use_candidate,
    reason = "run for its effect; the output is there for who wants it"
)]
pub fn ctr_ok(ns: &str, args: &[&str]) -> String {
    let o = ctr(ns, args);
    assert!(
        o.status.success(),
        "expected `ctr -n {ns} {}` to succeed: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A containerd namespace with Docker images imported; removes its tasks,
/// containers, images and itself when dropped.
pub struct Namespace(pub String);

impl Namespace {
    /// `roprof-test-<prefix>-<pid>`, with `images` (local Docker tags)
    /// imported.
    #[must_use]
    pub fn new(prefix: &str, images: &[&str]) -> Self {
        let ns = Namespace(format!("roprof-test-{prefix}-{}", std::process::id()));
        for image in images {
            ns.import(image);
        }
        ns
    }

    fn import(&self, image: &str) {
        let mut save = Command::new("docker")
            .args(["save", image])
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker save runs");
        let import = Command::new("ctr")
            .args([
                "-a",
                CONTAINERD_SOCKET,
                "-n",
                &self.0,
                "images",
                "import",
                "-",
            ])
            .stdin(save.stdout.take().expect("piped"))
            .output()
            .expect("ctr images import runs");
        let saved = save.wait().expect("docker save is waited for");
        assert!(saved.success(), "docker save {image} failed: {saved}");
        assert!(
            import.status.success(),
            "importing {image} into containerd namespace {}: {}",
            self.0,
            String::from_utf8_lossy(&import.stderr)
        );
    }

    /// The reference containerd gives an imported image: `docker save` of
    /// a local tag `NAME:TAG` imports as `docker.io/NAME:TAG`.
    #[must_use]
    pub fn image(&self, docker_tag: &str) -> String {
        let list = ctr_ok(&self.0, &["images", "ls", "-q"]);
        let want = format!("docker.io/{docker_tag}");
        list.lines()
            .find(|l| *l == want)
            .unwrap_or_else(|| panic!("expected {want} among the imported images: {list}"))
            .to_owned()
    }

    /// `ctr run ARGS` in this namespace, which must succeed; its stdout.
    #[expect(
        clippy::must_use_candidate,
        reason = "run for its effect; the output is there for who wants it"
    )]
    pub fn run(&self, args: &[&str]) -> String {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        ctr_ok(&self.0, &all)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let ns = self.0.clone();
        let out = ctr(&ns, &["containers", "ls", "-q"]);
        for id in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = ctr(&ns, &["tasks", "kill", "-s", "SIGKILL", id]);
            std::thread::sleep(std::time::Duration::from_millis(200));
            let _ = ctr(&ns, &["tasks", "rm", "-f", id]);
            let _ = ctr(&ns, &["containers", "rm", id]);
        }
        let out = ctr(&ns, &["images", "ls", "-q"]);
        for img in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = ctr(&ns, &["images", "rm", "--sync", img]);
        }
        let _ = ctr(&ns, &["content", "prune", "references"]);
        let _ = ctr("default", &["namespaces", "rm", &ns]);
    }
}
