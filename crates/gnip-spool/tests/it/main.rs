//! Integration tests of the spool through its public API, on real files in
//! temporary directories, and of a real writer process killed with SIGKILL.

mod basic;
mod kill;
mod limits;
mod memory;
mod props;
mod recovery;
mod util;
