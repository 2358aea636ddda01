//! Integration tests for gnip-client: real fixtures, real loopback HTTP,
//! real gzip. One binary; each file is a module.

mod fixtures;
mod sim;
mod stream;
mod support;
mod tls;
