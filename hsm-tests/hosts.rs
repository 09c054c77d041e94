//! The host bundle: sshd -t, a loopback sshd that only Includes the snippet, backup CAs, install.sh.
