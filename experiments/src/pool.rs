//! Worker threads for digests: the [`DigestPool`] a simulation's memo hashes prefetched
//! messages on, so that a run's PBKDF2 work is spread over every core while the event loop
//! goes on. What a run computes does not depend on the pool: a digest is a pure function of
//! its message, the memo hands out ordinals in the order the simulation asks, and a message
//! still waiting for a worker when it is needed is hashed by the asker.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use sim_core::digest::DigestPool;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    stop: bool,
}

/// The side of the pool the memo holds: a queue and a bell.
#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    bell: Condvar,
}

impl DigestPool for Shared {
    fn spawn(&self, job: Job) {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if q.stop {
            drop(q);
            // A pool shutting down still does what it is given, here.
            job();
            return;
        }
        q.jobs.push_back(job);
        drop(q);
        self.bell.notify_one();
    }
}

/// `threads` workers taking jobs in the order they came; stopped and joined on drop.
pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// A pool of `threads` workers (at least one).
    pub fn new(threads: usize) -> Pool {
        let shared = Arc::new(Shared::default());
        let workers = (0..threads.max(1))
            .map(|k| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("digest {k}"))
                    .spawn(move || work(&shared))
                    // Without a thread the run cannot use the pool at all; std does the same.
                    .unwrap_or_else(|e| panic!("cannot start a digest worker: {e}"))
            })
            .collect();
        Pool { shared, workers }
    }

    /// The handle a memo takes ([`sim_core::digest::DigestMemo::with_pool`]).
    pub fn handle(&self) -> Arc<dyn DigestPool> {
        Arc::clone(&self.shared) as Arc<dyn DigestPool>
    }

    /// Worker threads.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }
}

fn work(shared: &Shared) {
    loop {
        let job = {
            let mut q = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if let Some(job) = q.jobs.pop_front() {
                    break job;
                }
                if q.stop {
                    return;
                }
                q = shared.bell.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
        };
        job();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let jobs = {
            let mut q = self
                .shared
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            q.stop = true;
            // Prefetches nobody waits for any more: dropped (their memo goes with them).
            std::mem::take(&mut q.jobs)
        };
        drop(jobs);
        self.shared.bell.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// The default number of digest workers: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn every_job_runs_and_the_pool_stops_on_drop() {
        let (tx, rx) = std::sync::mpsc::channel();
        let pool = Pool::new(3);
        let handle = pool.handle();
        for k in 0..100 {
            let tx = tx.clone();
            handle.spawn(Box::new(move || {
                let _ = tx.send(k);
            }));
        }
        let mut got: Vec<i32> = (0..100)
            .map(|_| {
                rx.recv_timeout(std::time::Duration::from_secs(30))
                    .expect("a job did not run within 30 s")
            })
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        drop(pool);
        // After the pool is gone, its handle runs jobs on the caller, at once.
        let ran = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&ran);
        handle.spawn(Box::new(move || {
            r.fetch_add(1, Ordering::SeqCst);
        }));
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }
}
