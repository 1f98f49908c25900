//! Did the container serve a request during the window? Read from the
//! kernel through the container's network namespace in procfs: the
//! sockets in LISTEN (TCP) or bound (UDP) in `/proc/PID/net/{tcp,tcp6,
//! udp,udp6}`, and `Tcp: PassiveOpens` in `/proc/PID/net/snmp`, the
//! netns's count of accepted handshakes. A fresh netns starts at 0, so the
//! highest value seen is what the container accepted; docker-proxy
//! connects into the netns, so a probe through a published port counts.
//! procfs rather than a kernel hook: it costs nothing per event and needs
//! no new BPF program; sampled every poll, since the container may exit.
//! A container on the host's network would count the host's connections:
//! then nothing is claimed.

use std::collections::BTreeSet;

use crate::{
    model::{Caveat, Served},
    runtime::Engine,
};

/// What the samples found.
#[derive(Debug, Default)]
pub(super) struct Coverage {
    pid: Option<i64>,
    listened: BTreeSet<String>,
    accepted: u64,
    host_netns: bool,
}

impl Coverage {
    /// Samples the container's netns once (a no-op when it has no process).
    pub(super) async fn sample(&mut self, engine: &Engine, id: &str) {
        if self.pid.is_none() {
            self.pid = match engine.pid(id).await {
                Ok(p) if p > 0 => Some(p),
                _ => return,
            };
            self.host_netns = same_netns(self.pid.unwrap_or_default());
        }
        let Some(pid) = self.pid else { return };
        if self.host_netns {
            return;
        }
        for (file, proto) in [
            ("tcp", "tcp"),
            ("tcp6", "tcp"),
            ("udp", "udp"),
            ("udp6", "udp"),
        ] {
            if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")) {
                self.listened.extend(listening(&text, proto));
            }
        }
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/snmp"))
            && let Some(n) = passive_opens(&text)
        {
            self.accepted = self.accepted.max(n);
        }
    }

    /// What the samples saw of the container's sockets; `None` when they
    /// could not tell (no process seen, or the host's network).
    pub(super) fn served(&self) -> Option<Served> {
        (self.pid.is_some() && !self.host_netns).then(|| Served {
            listened: self.listened.iter().cloned().collect(),
            accepted: self.accepted,
        })
    }

    /// The caveat when it listened and accepted nothing.
    pub(super) fn caveat(&self) -> Option<Caveat> {
        (!self.host_netns && !self.listened.is_empty() && self.accepted == 0).then(|| {
            Caveat::NoRequestServed {
                ports: self.listened.iter().cloned().collect(),
            }
        })
    }
}

/// Whether `pid` shares roprof's network namespace.
fn same_netns(pid: i64) -> bool {
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/net")).ok();
    let theirs = ns(&pid.to_string());
    theirs.is_some() && theirs == ns("self")
}

/// `proto/PORT` of each listening (TCP state 0A) or bound (UDP state 07,
/// unconnected) socket in one `/proc/net/{tcp,udp}*` table.
fn listening(text: &str, proto: &str) -> Vec<String> {
    let want = if proto == "tcp" { "0A" } else { "07" };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let local = f.nth(1)?;
            let state = f.nth(1)?;
            let port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            (state == want && port != 0).then(|| format!("{proto}/{port}"))
        })
        .collect()
}

/// `Tcp: PassiveOpens` of a `/proc/net/snmp`.
fn passive_opens(text: &str) -> Option<u64> {
    let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
    let names = tcp.next()?;
    let values = tcp.next()?;
    let i = names.split_whitespace().position(|n| n == "PassiveOpens")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_tcp_and_bound_udp() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n   1: 0100007F:1F90 0100007F:C000 01 00000000:00000000 00:00000000 00000000     0        0 2 1\n";
        assert_eq!(listening(tcp, "tcp"), vec!["tcp/80".to_owned()]);
        let udp = "  sl  local_address rem_address   st\n  5: 00000000:0035 00000000:0000 07 0\n";
        assert_eq!(listening(udp, "udp"), vec!["udp/53".to_owned()]);
    }

    #[test]
    fn passive_opens_is_read_by_name() {
        let snmp = "Ip: Forwarding\nIp: 1\nTcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens\nTcp: 1 200 120000 -1 0 3\n";
        assert_eq!(passive_opens(snmp), Some(3));
    }

    #[test]
    fn caveat_only_when_listening_and_nothing_accepted() {
        let mut c = Coverage::default();
        assert_eq!(c.caveat(), None);
        c.listened.insert("tcp/80".into());
        assert!(matches!(c.caveat(), Some(Caveat::NoRequestServed { .. })));
        c.accepted = 1;
        assert_eq!(c.caveat(), None);
    }
}
