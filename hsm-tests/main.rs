//! Integration tests against real components: SoftHSM2 tokens created per test, the
//! `breakglass-ca` binary, `ssh-keygen -L` as a second opinion, and a real sshd on 127.0.0.1.

mod common;
mod sshd;

mod algorithms;
mod corpus;
mod hosts;
mod ledger;
mod many;
mod piv;
mod qr;
mod refusals;
mod selection;
