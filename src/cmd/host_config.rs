//! `host-config` and `add-backup-ca`: everything a host image needs to trust the CA (and its
//! backups), from public keys alone.

use crate::cli::{AddBackupCaArgs, HostConfigArgs};
use crate::cmd::Globals;
use crate::error::{Error, Result};

pub fn run(_g: &Globals, _args: &HostConfigArgs) -> Result<()> {
    Err(Error::usage("host-config is not written yet"))
}

pub fn add_backup_ca(_g: &Globals, _args: &AddBackupCaArgs) -> Result<()> {
    Err(Error::usage("add-backup-ca is not written yet"))
}
