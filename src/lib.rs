//! breakglass-ca: an offline emergency OpenSSH user certificate authority whose CA key lives on
//! a hardware token. `main.rs` only parses and reports; everything else is here, so that tests
//! call the same code the command line runs.

#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod audit;
pub mod backend;
pub mod cert;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod doctor;
pub mod dual;
pub mod duration;
pub mod error;
pub mod export;
pub mod fsx;
pub mod hostconf;
pub mod issue;
pub mod key;
pub mod krl;
pub mod ledger;
pub mod panic_guard;
pub mod pin;
pub mod policy;
pub mod qrscan;
pub mod signals;
pub mod status;
pub mod text;
pub mod ui;
pub mod uri;

pub use error::{Error, Result};
