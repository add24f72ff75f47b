//! The fault schedule of a chaos run, drawn from the seed before the run starts: the same seed
//! gives the same faults at the same offsets.

use std::time::Duration;

/// The server's send rate limit in a run with refusals, drawn from the seed: low enough that a
/// device's pipelined sends (5 a second on average, more after a reconnect) are refused
/// `rate_limited` now and then, high enough that the outboxes drain once the senders stop.
pub fn rate_limit(seed: u64) -> (u32, u32) {
    let mut rng = Rng::new(seed ^ 0x7261_7465_6c69_6d69);
    let per_second = rng.range(3, 7) as u32;
    let burst = per_second + rng.range(0, 4) as u32;
    (per_second, burst)
}

/// A seeded generator (xorshift64*), never global.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`. The state is the seed run through splitmix64, so neighbouring
    /// seeds give unrelated sequences, and never zero (xorshift's fixed point).
    pub fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)).max(1))
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `low..high` (milliseconds or counts).
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low).max(1)
    }
}

/// One kind of fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Every connection of one device is cut.
    Drop { device: usize },
    /// One device's connections go silent (half-open) for a while.
    Stall { device: usize, for_ms: u64 },
    /// One device's network gets slow for a while.
    Latency {
        device: usize,
        ms: u64,
        jitter_ms: u64,
        for_ms: u64,
    },
    /// One device's bandwidth is throttled for a while.
    Throttle {
        device: usize,
        bytes_per_s: u64,
        for_ms: u64,
    },
    /// A server node is killed with SIGKILL and started again after a pause.
    KillServer { node: usize, down_ms: u64 },
    /// A server node is stopped with SIGTERM (it answers what is in flight and closes with
    /// 1012) and started again after a pause.
    StopServer { node: usize, down_ms: u64 },
    /// A burst of bad frames on one device's own connection, between its own frames: the server
    /// answers each with an error, and past its bad-frame allowance closes with 4429.
    BadFrames { device: usize, count: u64 },
    /// Storage refuses writes for a while, so sends in flight fail `unavailable` (refusals only):
    /// on SQLite another connection holds the write lock; on PostgreSQL the node's connections
    /// are terminated again and again.
    Storage { node: usize, for_ms: u64 },
    /// The database (a private instance) stops — every node's connections terminated — and
    /// starts again after `down_ms` (database restarts only).
    RestartDatabase { down_ms: u64 },
    /// A device's process stops and starts again from its local store.
    RestartClient { device: usize },
}

/// Which optional faults a run mixes in.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mix {
    /// Storage refusals (about one fault in four).
    pub refusals: bool,
    /// Database restarts (about one fault in four).
    pub database_restarts: bool,
}

impl Fault {
    /// The kind's name, for the report.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Drop { .. } => "drop",
            Fault::Stall { .. } => "stall",
            Fault::Latency { .. } => "latency",
            Fault::Throttle { .. } => "throttle",
            Fault::KillServer { .. } => "server_kill",
            Fault::StopServer { .. } => "server_term",
            Fault::BadFrames { .. } => "bad_frames",
            Fault::Storage { .. } => "storage_refusal",
            Fault::RestartDatabase { .. } => "database_restart",
            Fault::RestartClient { .. } => "client_restart",
        }
    }
}

/// Faults at offsets from the start of the run, one every 1–4 s, within `duration`. With
/// refusals, about one fault in four is a storage refusal; with database restarts, about one in
/// four of the others is a restart of the database.
pub fn schedule(
    seed: u64,
    duration: Duration,
    devices: usize,
    nodes: usize,
    mix: Mix,
) -> Vec<(Duration, Fault)> {
    let mut rng = Rng::new(seed);
    let mut at = 0;
    let mut out = Vec::new();
    let end = duration.as_millis() as u64;
    loop {
        at += rng.range(1_000, 4_000);
        if at >= end {
            return out;
        }
        let device = rng.range(0, devices as u64) as usize;
        let node = rng.range(0, nodes as u64) as usize;
        if mix.refusals && rng.range(0, 4) == 0 {
            let for_ms = rng.range(300, 2_500);
            out.push((Duration::from_millis(at), Fault::Storage { node, for_ms }));
            continue;
        }
        let fault = match rng.range(0, 100) {
            0..=24 => Fault::Drop { device },
            25..=39 => Fault::Stall {
                device,
                for_ms: rng.range(500, 3_000),
            },
            40..=54 => Fault::Latency {
                device,
                ms: rng.range(20, 300),
                jitter_ms: rng.range(0, 200),
                for_ms: rng.range(1_000, 4_000),
            },
            55..=64 => Fault::Throttle {
                device,
                bytes_per_s: rng.range(2_000, 50_000),
                for_ms: rng.range(1_000, 3_000),
            },
            65..=74 => Fault::KillServer {
                node,
                down_ms: rng.range(100, 2_000),
            },
            75..=79 => Fault::StopServer {
                node,
                down_ms: rng.range(100, 2_000),
            },
            80..=89 => Fault::BadFrames {
                device,
                count: rng.range(5, 80),
            },
            _ => Fault::RestartClient { device },
        };
        // Drawn from a generator of its own and put in place of the fault drawn above, so that
        // adding restarts leaves the rest of a seed's schedule as it was.
        let mut restarts = Rng::new(seed ^ at ^ 0x7265_7374_6172_7473);
        let fault = if mix.database_restarts && restarts.range(0, 4) == 0 {
            Fault::RestartDatabase {
                down_ms: restarts.range(0, 2_000),
            }
        } else {
            fault
        };
        out.push((Duration::from_millis(at), fault));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let a = schedule(7, Duration::from_secs(60), 8, 1, Mix::default());
        assert_eq!(
            a,
            schedule(7, Duration::from_secs(60), 8, 1, Mix::default())
        );
        assert_ne!(
            a,
            schedule(8, Duration::from_secs(60), 8, 1, Mix::default())
        );
        assert_ne!(
            schedule(2, Duration::from_secs(60), 8, 1, Mix::default()),
            schedule(3, Duration::from_secs(60), 8, 1, Mix::default())
        );
        assert!(a.len() >= 12, "about one fault every 2.5 s");
        let kinds: std::collections::HashSet<&str> = a.iter().map(|(_, f)| f.kind()).collect();
        assert!(kinds.len() >= 5, "a mix of faults: {kinds:?}");
        assert!(!kinds.contains("storage_refusal"), "only with refusals");
    }

    const REFUSALS: Mix = Mix {
        refusals: true,
        database_restarts: false,
    };

    #[test]
    fn refusals_add_storage_faults_and_a_seeded_rate_limit() {
        let a = schedule(7, Duration::from_secs(120), 8, 2, REFUSALS);
        assert_eq!(a, schedule(7, Duration::from_secs(120), 8, 2, REFUSALS));
        let kinds: std::collections::HashSet<&str> = a.iter().map(|(_, f)| f.kind()).collect();
        for kind in [
            "storage_refusal",
            "server_kill",
            "server_term",
            "bad_frames",
        ] {
            assert!(kinds.contains(kind), "{kind} in {kinds:?}");
        }
        assert!(a.iter().all(|(_, f)| match f {
            Fault::Storage { node, for_ms } => *node < 2 && (300..2_500).contains(for_ms),
            _ => true,
        }));
        for seed in 0..50 {
            let (per_second, burst) = rate_limit(seed);
            assert!((3..7).contains(&per_second) && burst >= per_second && burst < per_second + 4);
            assert_eq!(rate_limit(seed), (per_second, burst));
        }
    }

    #[test]
    fn database_restarts_join_the_mix_and_leave_the_rest_alone() {
        let mix = Mix {
            refusals: false,
            database_restarts: true,
        };
        let with = schedule(20261128, Duration::from_secs(30), 8, 2, mix);
        assert_eq!(with, schedule(20261128, Duration::from_secs(30), 8, 2, mix));
        let restarts = with
            .iter()
            .filter(|(_, f)| matches!(f, Fault::RestartDatabase { down_ms } if *down_ms < 2_000))
            .count();
        assert!(restarts >= 2, "a 30 s run restarts the database: {with:?}");
        // The other faults are those of the same seed without restarts, minus the replaced ones.
        let without = schedule(20261128, Duration::from_secs(30), 8, 2, Mix::default());
        assert_eq!(with.len(), without.len());
        for ((at, fault), (at_without, other)) in with.iter().zip(&without) {
            assert_eq!(at, at_without);
            if !matches!(fault, Fault::RestartDatabase { .. }) {
                assert_eq!(fault, other);
            }
        }
    }
}
