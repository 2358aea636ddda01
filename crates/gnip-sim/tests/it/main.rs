//! Integration tests: the simulator started in-process on a loopback port,
//! driven over real TCP by a raw HTTP/1.1 reader (for wire-level checks)
//! and by reqwest (for the REST APIs).

mod support;

mod compliance;
mod corpus;
mod faults;
mod recovery;
mod rules;
mod streaming;
mod v2;
