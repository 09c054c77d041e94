//! `pubkey`: export the CA public key. Reads only public objects: no PIN, ever.

use crate::cli::{PubkeyArgs, PubkeyFormat};
use crate::cmd::{write_output, Globals};
use crate::error::Result;
use crate::export;

pub fn run(g: &Globals, args: &PubkeyArgs) -> Result<()> {
    let config = g.config()?;
    let (uri, key) = g.open_ca(config.as_ref(), false)?;
    let public = key.public_key();
    let text = match args.format {
        PubkeyFormat::Openssh => export::openssh_line(public)?,
        PubkeyFormat::Fingerprint => export::fingerprint(public),
        PubkeyFormat::Json => export::json(public, &uri.to_string())?,
        _ => return Err(crate::error::Error::usage("this format is not written yet")),
    };
    write_output(args.output.as_deref(), &format!("{text}\n"))
}
