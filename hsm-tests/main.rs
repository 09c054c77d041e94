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
mod doctor;
mod dual;
mod hardening;
mod help_examples;
mod hostile_text;
mod hosts;
mod image_builder;
mod import_qr;
mod krl;
mod krl_hosts;
mod ledger;
mod lock;
mod login_line;
mod many;
mod package;
mod piv;
mod qr;
mod refusals;
mod requester_keys;
mod revocation_e2e;
mod revoke;
mod selection;
mod signals;
mod statedir;
mod status_json;
mod tokenfree;
