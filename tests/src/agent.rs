//! A node agent under test (`roprof watch`, `roprof guard`): started and
//! waited for until it says it is ready, holding its BPF programs; stopped
//! with a signal, after which it must exit 0 and leave no program loaded.

use std::time::Duration;

use crate::{Finished, Running, prog_ids, prog_loaded, settled, spawn_roprof};

/// A running agent and the BPF programs it loaded.
pub struct Agent {
    /// The process.
    pub run: Running,
    /// Ids of its programs, read once it was ready.
    pub progs: Vec<u32>,
}

impl Agent {
    /// Starts `roprof ARGS` (with `env`) and waits up to a minute for the
    /// stderr line holding `ready`; it must hold at least `min_progs`
    /// programs then.
    #[must_use]
    pub fn start(args: &[&str], env: &[(&str, &str)], ready: &str, min_progs: usize) -> Self {
        let mut run = spawn_roprof(args, env);
        run.wait_for_stderr(ready, Duration::from_mins(1));
        Self::ready(run, min_progs)
    }

    /// An agent already past its readiness line.
    #[must_use]
    pub fn ready(run: Running, min_progs: usize) -> Self {
        let progs = prog_ids(run.pid());
        assert!(
            progs.len() >= min_progs.max(1),
            "roprof {} holds its BPF programs while it runs (at least {min_progs}), found {progs:?}",
            run.pid()
        );
        Agent { run, progs }
    }

    /// Sends `sig`; asserts exit 0 within `timeout` and that every program
    /// it held is unloaded; its output.
    #[must_use]
    pub fn stop(self, sig: i32, timeout: Duration) -> Finished {
        self.run.signal(sig);
        let f = self.run.finish(timeout);
        assert_eq!(
            f.code,
            Some(0),
            "roprof exits 0 on signal {sig}; stderr:\n{}",
            f.stderr
        );
        let left = settled(&Vec::new(), || {
            self.progs
                .iter()
                .copied()
                .filter(|id| prog_loaded(*id))
                .collect::<Vec<u32>>()
        });
        assert!(
            left.is_empty(),
            "roprof's BPF programs are unloaded after signal {sig}, still loaded: {left:?}"
        );
        f
    }
}
