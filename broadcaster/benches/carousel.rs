//! Carousel benchmark (filled in below).
fn main() {}
