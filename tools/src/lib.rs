//! `coap-tools`: the pieces of the `coap` command-line tool that do not touch the network:
//! parsing what the user typed ([`input`]), printing responses ([`output`]), exit codes
//! ([`exit`]) and the demo server's resources ([`demo`]).

#![forbid(unsafe_code)]

pub mod demo;
pub mod exit;
pub mod input;
pub mod output;
