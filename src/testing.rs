//! What unit tests share: a small deterministic random source (xorshift64), so that a failing case
//! comes back on every run.

/// Pseudo-random `u64`s from `seed` (not 0), the same for the same seed.
pub(crate) fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}
