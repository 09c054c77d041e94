//! The printable A4 key sheet (SVG) for the vault binder and the image pipeline.
