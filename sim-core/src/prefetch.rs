//! Cache hints: ask the processor to start loading a value that is about to be used.
//!
//! A hint never changes what a program computes; it only lets memory latency overlap with
//! other work. The simulator uses it to fetch the state of the nodes its next queue entries
//! reach, which at 100 000 peers and more is mostly not in any cache. On targets without a
//! safe prefetch instruction the hint does nothing.

/// Starts loading the cache line holding `value` into every cache level.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    safe_arch::prefetch_t0(value);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = value;
}

/// Starts loading the first element of `slice`, if it has one.
#[inline(always)]
pub fn prefetch_first<T>(slice: &[T]) {
    if let Some(first) = slice.first() {
        prefetch(first);
    }
}
