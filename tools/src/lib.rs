//! `coap-tools`: the pieces of the `coap` command-line tool that do not touch the network:
//! parsing what the user typed ([`input`]), printing responses ([`output`]), exit codes
//! ([`exit`]), the demo server's resources ([`demo`]), the file server ([`files`]) and the
//! resource directory ([`rd`]).

#![forbid(unsafe_code)]

pub mod demo;
pub mod destination;
pub mod exit;
pub mod files;
pub mod http_proxy;
pub mod input;
pub mod output;
pub mod plugtest;
pub mod proxy;
pub mod proxy_permits;
pub mod rd;
pub mod shared;
pub mod uploads;
