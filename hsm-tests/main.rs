//! Integration tests against real components: SoftHSM2 tokens created per test, the
//! `breakglass-ca` binary, `ssh-keygen -L` as a second opinion, and a real sshd on 127.0.0.1.

mod common;
mod host_tree;
mod sshd;

mod alarm;
mod algorithms;
mod audit;
mod batch;
mod corpus;
mod degrade;
mod hardening;
mod hostile_text;
mod hosts;
mod import_qr;
mod krl;
mod krl_hosts;
mod ledger;
mod lock;
mod many;
mod piv;
mod qr;
mod refusals;
mod requester_keys;
mod revocation_e2e;
mod revoke;
mod selection;
mod signals;
mod statedir;
