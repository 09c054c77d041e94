//! QR codes of the CA public key line: on the terminal (Unicode half blocks), as PNG and as SVG,
//! with error correction and module sizes chosen to survive printing and photocopying.
