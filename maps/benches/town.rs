//! Benchmarks of evac-maps (filled in below).
fn main() {}
