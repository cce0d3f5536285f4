//! What the event loops did, for the run summary: frames and syscalls, loop lag, peak
//! connections and queue depth, and what overload made them do.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Loop lag above this is overload: the driver warns, and defers liveness rounds (their
/// verdicts would count its own lateness as the neighbours' silence).
pub const LAG_HIGH_MICROS: u64 = 250_000;

/// Counters the loops add to, shared by the loops of a process.
#[derive(Debug, Default)]
pub(crate) struct DriverStats {
    pub(crate) frames_out: AtomicU64,
    pub(crate) frames_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) reads: AtomicU64,
    pub(crate) connections: AtomicUsize,
    pub(crate) connections_peak: AtomicUsize,
    pub(crate) queue_frames_peak: AtomicUsize,
    pub(crate) liveness_deferred: AtomicU64,
    pub(crate) overload_episodes: AtomicU64,
    /// Time the process spent overloaded, µs.
    pub(crate) overloaded_micros: AtomicU64,
    /// The loops' latest lag, µs, one slot each (the process is overloaded when any is high).
    pub(crate) lag_now: Mutex<Vec<u64>>,
    pub(crate) lag: Mutex<LagHistogram>,
}

/// A loop's counts since it last added them to the process's.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) frames_out: u64,
    pub(crate) frames_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) bytes_in: u64,
    pub(crate) writes: u64,
    pub(crate) reads: u64,
    pub(crate) queue_frames_peak: usize,
}

impl DriverStats {
    /// Adds a loop's counts (and zeroes them).
    pub(crate) fn add(&self, c: &mut Counts) {
        let c = std::mem::take(c);
        self.frames_out.fetch_add(c.frames_out, Ordering::Relaxed);
        self.frames_in.fetch_add(c.frames_in, Ordering::Relaxed);
        self.bytes_out.fetch_add(c.bytes_out, Ordering::Relaxed);
        self.bytes_in.fetch_add(c.bytes_in, Ordering::Relaxed);
        self.writes.fetch_add(c.writes, Ordering::Relaxed);
        self.reads.fetch_add(c.reads, Ordering::Relaxed);
        self.queue_frames_peak
            .fetch_max(c.queue_frames_peak, Ordering::Relaxed);
    }

    pub(crate) fn connection_opened(&self) {
        let n = self.connections.fetch_add(1, Ordering::Relaxed) + 1;
        self.connections_peak.fetch_max(n, Ordering::Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// Sets loop `i`'s latest lag; the largest latest lag of the process's loops (it is
    /// overloaded when that is above [`LAG_HIGH_MICROS`]).
    pub(crate) fn set_lag(&self, i: usize, micros: u64) -> u64 {
        let mut now = self.lag_now.lock().unwrap_or_else(|p| p.into_inner());
        if now.len() <= i {
            now.resize(i + 1, 0);
        }
        now[i] = micros;
        now.iter().copied().max().unwrap_or(0)
    }

    pub(crate) fn figures(&self, loops: usize, cpu_s: Option<f64>) -> DriverFigures {
        let lag = self.lag.lock().unwrap_or_else(|p| p.into_inner());
        let frames_out = self.frames_out.load(Ordering::Relaxed);
        let frames_in = self.frames_in.load(Ordering::Relaxed);
        DriverFigures {
            loops,
            frames_out,
            frames_in,
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            reads: self.reads.load(Ordering::Relaxed),
            connections_peak: self.connections_peak.load(Ordering::Relaxed),
            queue_frames_peak: self.queue_frames_peak.load(Ordering::Relaxed),
            lag_p50_ms: lag.quantile(0.5) as f64 / 1e3,
            lag_p99_ms: lag.quantile(0.99) as f64 / 1e3,
            lag_max_ms: lag.max as f64 / 1e3,
            lag_samples: lag.count,
            liveness_deferred: self.liveness_deferred.load(Ordering::Relaxed),
            overload_episodes: self.overload_episodes.load(Ordering::Relaxed),
            overloaded_s: self.overloaded_micros.load(Ordering::Relaxed) as f64 / 1e6,
            cpu_per_frame_us: cpu_s
                .filter(|_| frames_out > 0)
                .map(|c| c * 1e6 / frames_out as f64),
        }
    }
}

/// The driver's figures for a run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DriverFigures {
    /// Event-loop threads.
    pub loops: usize,
    /// Frames the process's nodes sent.
    pub frames_out: u64,
    /// Frames they received.
    pub frames_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Bytes read.
    pub bytes_in: u64,
    /// `write` calls that moved bytes (frames queued together go out in one).
    pub writes: u64,
    /// `read` calls that returned bytes.
    pub reads: u64,
    /// Most connections open at once.
    pub connections_peak: usize,
    /// Most frames waiting on one connection.
    pub queue_frames_peak: usize,
    /// Loop lag (how late a loop's 100 ms tick ran), median, ms.
    pub lag_p50_ms: f64,
    /// Loop lag, 99th percentile, ms.
    pub lag_p99_ms: f64,
    /// Loop lag, the worst, ms.
    pub lag_max_ms: f64,
    /// Ticks measured.
    pub lag_samples: u64,
    /// Liveness rounds put off because the process was overloaded.
    pub liveness_deferred: u64,
    /// Times the process became overloaded.
    pub overload_episodes: u64,
    /// Seconds it spent overloaded.
    pub overloaded_s: f64,
    /// Process CPU over frames sent, µs.
    pub cpu_per_frame_us: Option<f64>,
}

/// Lag samples in log-linear buckets: 8 a power of two, so a quantile is within 12.5 %.
#[derive(Debug)]
pub(crate) struct LagHistogram {
    buckets: Vec<u64>,
    count: u64,
    max: u64,
}

const SUB: u64 = 8;

impl Default for LagHistogram {
    fn default() -> Self {
        LagHistogram {
            buckets: vec![0; 64 * SUB as usize],
            count: 0,
            max: 0,
        }
    }
}

impl LagHistogram {
    fn bucket(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let log = 63 - u64::from(v.leading_zeros()); // >= 3
        let sub = (v >> (log - 3)) & (SUB - 1);
        ((log - 2) * SUB + sub) as usize
    }

    /// The largest value of bucket `b`.
    fn upper(b: usize) -> u64 {
        let b = b as u64;
        if b < SUB {
            return b;
        }
        let log = b / SUB + 2;
        let sub = b % SUB;
        ((SUB + sub + 1) << (log - 3)) - 1
    }

    pub(crate) fn add(&mut self, micros: u64) {
        let b = Self::bucket(micros).min(self.buckets.len() - 1);
        self.buckets[b] += 1;
        self.count += 1;
        self.max = self.max.max(micros);
    }

    /// The `q` quantile, µs (an upper bound within its bucket, at most the maximum).
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((self.count as f64 * q).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (b, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Self::upper(b).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_their_values_and_quantiles_are_close() {
        for v in [0u64, 1, 7, 8, 9, 15, 16, 100, 1_000, 123_456, 10_000_000] {
            let b = LagHistogram::bucket(v);
            assert!(LagHistogram::upper(b) >= v, "{v} above its bucket");
            if b > 0 {
                assert!(LagHistogram::upper(b - 1) < v, "{v} fits a lower bucket");
            }
        }
        let mut h = LagHistogram::default();
        for v in 1..=1000u64 {
            h.add(v * 100);
        }
        let p50 = h.quantile(0.5) as f64;
        let p99 = h.quantile(0.99) as f64;
        assert!((50_000.0..=50_000.0 * 1.125).contains(&p50), "{p50}");
        assert!((99_000.0..=100_000.0).contains(&p99), "{p99}");
        assert_eq!(h.quantile(1.0), 100_000);
    }
}
