//! Integration tests: the simulator started in-process on a loopback port,
//! driven over real TCP by a raw HTTP/1.1 reader (for wire-level checks)
//! and by reqwest (for the REST APIs).

mod support;

mod faults;
mod streaming;
