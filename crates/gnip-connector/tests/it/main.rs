//! End-to-end tests: the built-in simulator on a loopback port, the real
//! `gnip-connector` binary against it, and real SQLite databases and gzip
//! files checked afterwards against the simulator's accounting.

mod support;

mod crash;
mod e2e;
mod shutdown;
mod sim_command;
mod spool_full;
