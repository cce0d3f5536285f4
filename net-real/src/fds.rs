//! The descriptor budget: a process raises its soft descriptor limit to the hard one at start,
//! keeps a reserve for the listeners, its files and the refusals themselves, and counts every
//! connection descriptor it holds (one a connection, dials included). A connection that would overdraw the budget is refused with
//! `Connection refused:busy`, or takes the place of the oldest inbound connection that has
//! not said anything valid: `accept` never fails for want of a descriptor.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Descriptors kept out of the budget: listeners, log and CSV files, standard streams, the
/// accepted socket of a refusal and the transient overdraw of evictions.
pub const RESERVE: u64 = 64;
/// Descriptors one served connection holds.
pub const PER_CONNECTION: usize = 1;

/// A process's descriptor budget and what it refused.
#[derive(Debug)]
pub struct FdBudget {
    /// The soft limit after raising it.
    pub limit: u64,
    /// Descriptors connections may hold.
    pub max: usize,
    used: AtomicUsize,
    refused: AtomicU64,
    evicted: AtomicU64,
}

/// What a budget did, for the run summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdFigures {
    /// The process's descriptor limit.
    pub limit: u64,
    /// Connections the budget holds at once.
    pub connections_max: usize,
    /// Connections refused with `busy` because the budget was spent.
    pub refused: u64,
    /// Silent inbound connections closed to make room for a new one.
    pub evicted: u64,
}

impl FdBudget {
    /// The process's budget: on first use, raises the soft limit to the hard one (when it
    /// can) and sizes the budget from it. Every runtime of the process shares it.
    pub fn from_process() -> Arc<FdBudget> {
        static BUDGET: std::sync::OnceLock<Arc<FdBudget>> = std::sync::OnceLock::new();
        Arc::clone(BUDGET.get_or_init(|| Arc::new(FdBudget::with_limit(raise_limit()))))
    }

    /// A budget under a limit of `limit` descriptors.
    pub fn with_limit(limit: u64) -> FdBudget {
        let max = usize::try_from(limit.saturating_sub(RESERVE)).unwrap_or(usize::MAX);
        FdBudget {
            limit,
            max,
            used: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    /// Whether one more connection fits.
    pub fn has_room(&self) -> bool {
        self.used.load(Ordering::SeqCst) + PER_CONNECTION <= self.max
    }

    /// Whether one more connection fits once an eviction's descriptors come back (they are
    /// released as its threads end, just after): the reserve's first half absorbs that.
    pub fn has_room_after_eviction(&self) -> bool {
        let slack = usize::try_from(RESERVE / 2).unwrap_or(0);
        self.used.load(Ordering::SeqCst) + PER_CONNECTION <= self.max + slack
    }

    /// Counts one refusal.
    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one eviction.
    pub fn evicted(&self) {
        self.evicted.fetch_add(1, Ordering::Relaxed);
    }

    /// Descriptors held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }

    /// The figures so far.
    pub fn figures(&self) -> FdFigures {
        FdFigures {
            limit: self.limit,
            connections_max: self.max / PER_CONNECTION,
            refused: self.refused.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }
}

/// One descriptor counted against a budget while it lives.
#[derive(Debug)]
pub struct FdToken(Arc<FdBudget>);

impl FdToken {
    /// Counts one descriptor.
    pub fn take(budget: &Arc<FdBudget>) -> FdToken {
        budget.used.fetch_add(1, Ordering::SeqCst);
        FdToken(Arc::clone(budget))
    }
}

impl Drop for FdToken {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Raises the soft descriptor limit to the hard one; the soft limit in force after.
fn raise_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024; // the common default, if the limit cannot be read
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_counts_descriptors_and_keeps_its_reserve() {
        let b = Arc::new(FdBudget::with_limit(RESERVE + 2));
        assert_eq!(b.figures().connections_max, 2);
        let first = FdToken::take(&b);
        assert!(b.has_room());
        let second = FdToken::take(&b);
        assert!(!b.has_room(), "a third connection would overdraw");
        assert!(b.has_room_after_eviction());
        drop(first);
        assert!(b.has_room());
        assert_eq!(b.used(), 1);
        drop(second);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        use nix::sys::resource::{Resource, getrlimit};
        let b = FdBudget::from_process();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("readable limit");
        assert_eq!(soft, hard);
        assert_eq!(b.limit, soft);
    }
}
