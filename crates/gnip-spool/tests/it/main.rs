//! Integration tests of the spool through its public API, on real files in
//! temporary directories.

mod basic;
mod recovery;
mod util;
