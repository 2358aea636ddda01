//! The `gnip-connector` command. Everything lives in the library; this file
//! only parses the command line and hands over.

use clap::Parser;

fn main() -> std::process::ExitCode {
    gnip_connector::app::main(gnip_connector::cli::Cli::parse())
}
