//! The gnip-connector application: configuration, the pipeline from stream
//! to spool to sinks, the sinks themselves, and the command line.

pub mod sinks;
