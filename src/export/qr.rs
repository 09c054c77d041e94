//! QR codes of the CA public key line: on the terminal (Unicode half blocks), as PNG and as SVG,
//! with error correction and module sizes chosen to survive printing and photocopying.
//!
//! Choices, and why:
//! - **Error correction.** Anything meant for paper ([`Qr::for_print`]: PNG, SVG, the key
//!   sheet) uses level **Q** (25 % of the symbol may be lost), and falls back to **M** only when
//!   the text is too long for Q. An RSA-4096 CA line is about 740 bytes and fits level Q easily
//!   (version 26, 129 modules with the quiet zone; Q holds up to 1,663 bytes); only a bundle of several RSA lines can need
//!   M. A terminal QR ([`Qr::for_screen`]) uses level **L**: a screen does not smudge or fold,
//!   and fewer modules mean bigger modules on the screen and a code that fits the terminal.
//! - **Quiet zone.** Always 4 modules of light on every side, as ISO/IEC 18004 asks; scanners
//!   lose codes that touch other ink.
//! - **PNG**: 8 px per module, 1-bit greyscale, and a pHYs chunk that prints it at 1 mm per
//!   module (8,000 px per metre).
//! - **SVG**: sized in millimetres. A module is 1 mm, shrunk only so that the whole symbol
//!   (quiet zone included) stays within 150 mm; the largest QR code there is (version 40, 185
//!   modules with its quiet zone) is then 0.81 mm per module. Never below 0.6 mm
//!   ([`MIN_MODULE_MM`]): a phone resolves that easily, and a photocopier's blur of about
//!   0.1–0.2 mm at each edge still leaves most of the module.
//! - Always dark modules on a light background, because many scanners do not read inverted
//!   codes: on a terminal with explicit ANSI colours (black on white, whatever the terminal's
//!   own colours); into a file or a pipe as plain half blocks, a block for each dark module,
//!   which is right as printed or seen in an editor (dark text on light), and holds no escape
//!   sequence.
//!
//! `qrcode` encodes the symbol and draws the terminal's half blocks. The PNG and SVG are drawn
//! here: `qrcode`'s PNG needs the `image` crate and cannot write a 1-bit image with a print
//! resolution, and its SVG is sized in pixels, has no title and cannot be placed as a group on
//! the key sheet.

use std::fmt::{self, Write as _};

use qrcode::render::unicode::Dense1x2;
use qrcode::{Color, EcLevel, QrCode, Version};

use crate::error::{Error, Result};
use crate::text;

/// Light modules around the symbol, on every side.
pub const QUIET_ZONE: usize = 4;
/// PNG pixels per module.
pub const PNG_MODULE_PX: u32 = 8;
/// PNG print resolution: 8 px per module at 1 mm per module.
const PNG_PX_PER_METRE: u32 = PNG_MODULE_PX * 1000;
/// The largest SVG module, in mm.
pub const SVG_MODULE_MM: f64 = 1.0;
/// The largest side of a standalone SVG QR code (quiet zone included), in mm.
pub const SVG_MAX_SIDE_MM: f64 = 150.0;
/// No printed module is ever smaller than this (mm).
pub const MIN_MODULE_MM: f64 = 0.6;

/// ANSI: black foreground on a white (light grey on some consoles) background.
const ANSI_DARK_ON_LIGHT: &str = "\x1b[30;47m";
const ANSI_RESET: &str = "\x1b[0m";

/// A QR symbol, seen with its quiet zone as a square of dark and light modules.
#[derive(Clone)]
pub struct Qr {
    /// The symbol without its quiet zone.
    code: QrCode,
}

impl fmt::Debug for Qr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Qr {
    /// For paper (PNG, SVG, the sheet): level Q, else M when Q cannot hold `text`.
    pub fn for_print(text: &str, what: &str) -> Result<Qr> {
        Qr::encode(text, &[EcLevel::Q, EcLevel::M], what)
    }

    /// For the terminal: level L (see the module documentation).
    pub fn for_screen(text: &str, what: &str) -> Result<Qr> {
        Qr::encode(text, &[EcLevel::L], what)
    }

    /// Encode `text` at the first of `levels` that can hold it.
    fn encode(text: &str, levels: &[EcLevel], what: &str) -> Result<Qr> {
        let mut last = EcLevel::L;
        for &level in levels {
            last = level;
            match QrCode::with_error_correction_level(text.as_bytes(), level) {
                Ok(code) => return Ok(Qr { code }),
                Err(qrcode::types::QrError::DataTooLong) => continue,
                Err(e) => {
                    return Err(Error::invalid(format!(
                        "cannot make a QR code of {what}: {e}"
                    )))
                }
            }
        }
        Err(Error::usage(format!(
            "{what} is {} bytes, too long for one QR code (at most {} bytes at error-correction level {})",
            text.len(),
            max_bytes(last),
            level_name(last)
        ))
        .with_hint("use --format sheet, which prints one QR code per CA line"))
    }

    /// Modules per side, quiet zone included.
    pub fn side(&self) -> usize {
        self.code.width() + 2 * QUIET_ZONE
    }

    /// Whether the module at column `x`, row `y` (quiet zone included) is dark. Outside the
    /// symbol everything is light.
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        let width = self.code.width();
        match (x.checked_sub(QUIET_ZONE), y.checked_sub(QUIET_ZONE)) {
            (Some(x), Some(y)) if x < width && y < width => self.code[(x, y)] == Color::Dark,
            _ => false,
        }
    }

    /// The QR version (1–40).
    pub fn version(&self) -> i16 {
        match self.code.version() {
            Version::Normal(v) | Version::Micro(v) => v,
        }
    }

    /// The error-correction level's letter.
    pub fn level(&self) -> &'static str {
        level_name(self.code.error_correction_level())
    }

    /// `version 10, level Q, 65×65 modules with the quiet zone`, for messages.
    pub fn describe(&self) -> String {
        let side = self.side();
        format!(
            "version {}, level {}, {side}×{side} modules with the quiet zone",
            self.version(),
            self.level(),
        )
    }

    /// The code as text: two module rows per text line with the half blocks ▀ ▄ █ and spaces
    /// (`qrcode`'s `Dense1x2`, which also draws the 4-module quiet zone). A block is a dark
    /// module, a space a light one: read as dark ink on light paper, the way a text file is
    /// printed or shown by an editor. With `colours` (only for a terminal), each line is drawn
    /// in black on a white background with ANSI colours and ends with a colour reset, so a
    /// terminal with light text on a dark background shows the code the right way round too;
    /// without, the text holds no escape sequence. Every line ends with a newline.
    pub fn terminal(&self, colours: bool) -> String {
        let blocks = self
            .code
            .render::<Dense1x2>()
            .dark_color(Dense1x2::Dark)
            .light_color(Dense1x2::Light)
            .quiet_zone(true)
            .module_dimensions(1, 1)
            .build();
        let mut out = String::with_capacity(blocks.len() + 16 * self.side());
        for line in blocks.lines() {
            if colours {
                out.push_str(ANSI_DARK_ON_LIGHT);
            }
            out.push_str(line);
            if colours {
                out.push_str(ANSI_RESET);
            }
            out.push('\n');
        }
        out
    }

    /// Terminal columns the [`Qr::terminal`] rendering needs.
    pub fn terminal_columns(&self) -> usize {
        self.side()
    }

    /// A PNG image: 8 px per module, 1-bit greyscale, black on white, quiet zone included,
    /// with a pHYs chunk of 1 mm per module.
    pub fn png(&self) -> Result<Vec<u8>> {
        let px = self.side() as u32 * PNG_MODULE_PX;
        // One module is 8 px, so exactly one byte of a 1-bit row: 0x00 dark, 0xff light.
        let mut data = Vec::with_capacity(self.side() * self.side() * PNG_MODULE_PX as usize);
        for y in 0..self.side() {
            let row: Vec<u8> = (0..self.side())
                .map(|x| if self.is_dark(x, y) { 0x00 } else { 0xff })
                .collect();
            for _ in 0..PNG_MODULE_PX {
                data.extend_from_slice(&row);
            }
        }
        let mut out = Vec::new();
        let failed = |e: png::EncodingError| Error::png("cannot encode the PNG image", e);
        {
            let mut encoder = png::Encoder::new(&mut out, px, px);
            encoder.set_color(png::ColorType::Grayscale);
            encoder.set_depth(png::BitDepth::One);
            encoder.set_pixel_dims(Some(png::PixelDimensions {
                xppu: PNG_PX_PER_METRE,
                yppu: PNG_PX_PER_METRE,
                unit: png::Unit::Meter,
            }));
            let mut writer = encoder.write_header().map_err(failed)?;
            writer.write_image_data(&data).map_err(failed)?;
            writer.finish().map_err(failed)?;
        }
        Ok(out)
    }

    /// The module size of the standalone SVG: 1 mm, or less so that the symbol stays within
    /// 150 mm; never less than 0.6 mm (a version 40 symbol gets 0.81 mm).
    pub fn svg_module_mm(&self) -> f64 {
        (SVG_MAX_SIDE_MM / self.side() as f64).clamp(MIN_MODULE_MM, SVG_MODULE_MM)
    }

    /// A standalone SVG document, sized in mm (see [`Qr::svg_module_mm`]).
    pub fn svg(&self, title: &str) -> String {
        let side_mm = self.side() as f64 * self.svg_module_mm();
        let n = self.side();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{w}mm\" height=\"{w}mm\" viewBox=\"0 0 {n} {n}\" shape-rendering=\"crispEdges\">\n\
             <title>{title}</title>\n\
             <rect width=\"{n}\" height=\"{n}\" fill=\"#ffffff\"/>\n\
             <path fill=\"#000000\" d=\"{d}\"/>\n\
             </svg>\n",
            w = mm(side_mm),
            title = xml_escape(title),
            d = self.svg_path_data(),
        )
    }

    /// The symbol as an SVG group placed at (`x`, `y`) with modules of `module` user units
    /// (mm on the sheet): a white square (quiet zone included) and the dark modules.
    pub fn svg_group(&self, x: f64, y: f64, module: f64, id: &str) -> String {
        let n = self.side();
        format!(
            "<g id=\"{id}\" transform=\"translate({x} {y}) scale({m})\" shape-rendering=\"crispEdges\">\
             <rect width=\"{n}\" height=\"{n}\" fill=\"#ffffff\"/>\
             <path fill=\"#000000\" d=\"{d}\"/></g>\n",
            x = mm(x),
            y = mm(y),
            m = module,
            d = self.svg_path_data(),
        )
    }

    /// Path data in module units: one rectangle per horizontal run of dark modules.
    fn svg_path_data(&self) -> String {
        let mut d = String::new();
        for y in 0..self.side() {
            let mut x = 0;
            while x < self.side() {
                if !self.is_dark(x, y) {
                    x += 1;
                    continue;
                }
                let start = x;
                while x < self.side() && self.is_dark(x, y) {
                    x += 1;
                }
                let len = x - start;
                let _ = write!(d, "M{start} {y}h{len}v1h-{len}z");
            }
        }
        d
    }
}

fn level_name(level: EcLevel) -> &'static str {
    match level {
        EcLevel::L => "L",
        EcLevel::M => "M",
        EcLevel::Q => "Q",
        EcLevel::H => "H",
    }
}

/// Bytes a version 40 symbol holds in byte mode at `level`.
fn max_bytes(level: EcLevel) -> usize {
    match level {
        EcLevel::L => 2953,
        EcLevel::M => 2331,
        EcLevel::Q => 1663,
        EcLevel::H => 1273,
    }
}

/// A length in mm with at most three decimals and no trailing zeros.
pub(crate) fn mm(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Escape text for SVG/XML content and attribute values. A character XML 1.0 does not allow
/// (C0 controls, U+FFFE, U+FFFF) and one [`text::is_unsafe_char`] names (C1 controls, bidi
/// overrides, line separators, zero-width characters) becomes U+FFFD: the document stays valid
/// XML and prints what it says. Callers show untrusted text with [`text::escape`] first, so
/// this is the last line of defence, not the way such text is shown.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if text::is_unsafe_char(c) || matches!(c, '\u{fffe}' | '\u{ffff}') => {
                out.push('\u{fffd}')
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// XML 1.0's `Char` production.
    pub(crate) fn is_xml_char(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
    }

    /// A fake OpenSSH line of `len` bytes (base64 alphabet, like a real one).
    pub(crate) fn fake_line(kind: &str, len: usize) -> String {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let head = format!("{kind} AAAA");
        let tail = " breakglass-ca";
        let body: String = (0..len.saturating_sub(head.len() + tail.len()))
            .map(|i| alphabet[(i * 7 + i / 3) % 64] as char)
            .collect();
        format!("{head}{body}{tail}")
    }

    /// Decode every QR code in a greyscale image.
    pub(crate) fn decode_grey(w: usize, h: usize, luma: &[u8]) -> Vec<String> {
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| luma[y * w + x]);
        img.detect_grids()
            .into_iter()
            .filter_map(|g| g.decode().ok().map(|(_, s)| s))
            .collect()
    }

    /// Pixels of the symbol at `px` pixels per module.
    fn raster(qr: &Qr, px: usize) -> (usize, Vec<u8>) {
        let w = qr.side() * px;
        let luma = (0..w * w)
            .map(|i| {
                if qr.is_dark((i % w) / px, (i / w) / px) {
                    0
                } else {
                    255
                }
            })
            .collect();
        (w, luma)
    }

    #[test]
    fn levels_and_sizes() {
        // Real lines are ~180 (P-256), ~220 (P-384), ~95 (Ed25519), ~740 (RSA-4096) bytes.
        for (len, version) in [(95, 8), (180, 12), (220, 13), (740, 26)] {
            let line = fake_line("ssh-rsa", len);
            assert_eq!(line.len(), len);
            let qr = Qr::for_print(&line, "the line").unwrap();
            assert_eq!(qr.level(), "Q", "{len} bytes");
            assert_eq!(qr.version(), version, "{len} bytes: {}", qr.describe());
            assert_eq!(qr.side(), 17 + 4 * qr.version() as usize + 2 * QUIET_ZONE);
            assert!(qr.svg_module_mm() >= MIN_MODULE_MM);
            let screen = Qr::for_screen(&line, "the line").unwrap();
            assert_eq!(screen.level(), "L");
            assert!(screen.side() <= qr.side());
        }
        // Too long for Q, fits M.
        let big = fake_line("ssh-rsa", 2000);
        let qr = Qr::for_print(&big, "the bundle").unwrap();
        assert_eq!(qr.level(), "M");
        assert!(qr.svg_module_mm() >= MIN_MODULE_MM);
        assert!(qr.side() as f64 * qr.svg_module_mm() <= SVG_MAX_SIDE_MM + 1e-9);
        // Too long for anything: a usage error pointing at the sheet.
        let err = Qr::for_print(&fake_line("ssh-rsa", 2400), "the bundle").unwrap_err();
        assert!(
            err.to_string().contains("too long for one QR code"),
            "{err}"
        );
        assert!(err.hint().unwrap().contains("--format sheet"));
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn quiet_zone_is_light() {
        let qr = Qr::for_print(&fake_line("ssh-ed25519", 95), "x").unwrap();
        let n = qr.side();
        for i in 0..n {
            for q in 0..QUIET_ZONE {
                assert!(!qr.is_dark(i, q) && !qr.is_dark(i, n - 1 - q));
                assert!(!qr.is_dark(q, i) && !qr.is_dark(n - 1 - q, i));
            }
        }
        // The finder pattern's corner starts right after the quiet zone.
        assert!(qr.is_dark(QUIET_ZONE, QUIET_ZONE));
    }

    #[test]
    fn rasterised_symbol_decodes() {
        for len in [95, 180, 740] {
            let line = fake_line("ecdsa-sha2-nistp256", len);
            let qr = Qr::for_print(&line, "x").unwrap();
            let (w, luma) = raster(&qr, 3);
            assert_eq!(decode_grey(w, w, &luma), vec![line]);
        }
    }

    /// The half blocks of a text rendering back into module rows (two per line), each line
    /// checked to be as wide as the symbol; `colours`: each line must be wrapped in the ANSI
    /// colours, else hold no escape sequence at all.
    pub(crate) fn modules_of_text(text: &str, colours: bool) -> Vec<Vec<bool>> {
        let mut grid = Vec::new();
        for l in text.lines() {
            let l = if colours {
                l.strip_prefix(ANSI_DARK_ON_LIGHT)
                    .and_then(|l| l.strip_suffix(ANSI_RESET))
                    .unwrap_or_else(|| panic!("not black on white: {l:?}"))
            } else {
                assert!(
                    !l.contains('\x1b'),
                    "an escape sequence in plain text: {l:?}"
                );
                l
            };
            let (top, bottom): (Vec<bool>, Vec<bool>) = l
                .chars()
                .map(|c| match c {
                    ' ' => (false, false),
                    '\u{2580}' => (true, false),
                    '\u{2584}' => (false, true),
                    '\u{2588}' => (true, true),
                    other => panic!("unexpected {other:?}"),
                })
                .unzip();
            grid.push(top);
            grid.push(bottom);
        }
        grid
    }

    #[test]
    fn terminal_rendering_round_trips() {
        let line = fake_line("ecdsa-sha2-nistp384", 220);
        let qr = Qr::for_screen(&line, "x").unwrap();
        for colours in [true, false] {
            let text = qr.terminal(colours);
            assert!(text.ends_with('\n'));
            assert_eq!(text.contains('\x1b'), colours);
            // Rebuild the modules from the half blocks and decode them.
            let grid = modules_of_text(&text, colours);
            assert!(grid.iter().all(|row| row.len() == qr.terminal_columns()));
            assert_eq!(grid.len(), qr.side() + 1); // odd side: the last half line is light
            assert!(grid[qr.side()].iter().all(|d| !d));
            for (y, row) in grid.iter().take(qr.side()).enumerate() {
                for (x, dark) in row.iter().enumerate() {
                    assert_eq!(*dark, qr.is_dark(x, y));
                }
            }
            // Dark ink on light paper: a block is dark.
            let px = 4;
            let w = qr.side() * px;
            let luma: Vec<u8> = (0..w * w)
                .map(|i| if grid[i / w / px][i % w / px] { 0 } else { 255 })
                .collect();
            assert_eq!(decode_grey(w, w, &luma), vec![line.clone()]);
            // ... and the inverse (a block read as light) is not the code: the check above
            // can fail.
            let inverted: Vec<u8> = luma.iter().map(|p| 255 - p).collect();
            assert!(decode_grey(w, w, &inverted).is_empty());
            // The quiet zone: two text lines of spaces on top, four columns on each side.
            for l in text.lines().take(2) {
                assert!(l.contains(&" ".repeat(qr.side())));
            }
            assert!(grid.iter().all(|row| row[..QUIET_ZONE]
                .iter()
                .chain(&row[row.len() - QUIET_ZONE..])
                .all(|d| !d)));
        }
    }

    #[test]
    fn terminal_is_two_module_rows_per_line() {
        // What the terminal showed before qrcode drew it: byte for byte the same; and without
        // colours the same blocks alone.
        for len in [20, 95, 220, 740] {
            let qr = Qr::for_screen(&fake_line("ssh-ed25519", len), "x").unwrap();
            let mut want = String::new();
            let mut plain = String::new();
            for y in (0..qr.side()).step_by(2) {
                let row: String = (0..qr.side())
                    .map(|x| match (qr.is_dark(x, y), qr.is_dark(x, y + 1)) {
                        (false, false) => ' ',
                        (true, false) => '\u{2580}',
                        (false, true) => '\u{2584}',
                        (true, true) => '\u{2588}',
                    })
                    .collect();
                want.push_str(&format!("{ANSI_DARK_ON_LIGHT}{row}{ANSI_RESET}\n"));
                plain.push_str(&format!("{row}\n"));
            }
            assert_eq!(qr.terminal(true), want, "{len} bytes");
            assert_eq!(qr.terminal(false), plain, "{len} bytes");
        }
    }

    #[test]
    fn png_decodes_with_8px_modules() {
        let line = fake_line("ssh-rsa", 740);
        let qr = Qr::for_print(&line, "x").unwrap();
        let bytes = qr.png().unwrap();
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut buf).unwrap();
        assert_eq!(frame.width as usize, qr.side() * 8);
        assert_eq!(frame.color_type, png::ColorType::Grayscale);
        assert_eq!(frame.bit_depth, png::BitDepth::Eight);
        let dims = reader.info().pixel_dims.unwrap();
        assert_eq!((dims.xppu, dims.unit), (8000, png::Unit::Meter));
        let w = frame.width as usize;
        let luma = &buf[..w * w];
        // Module (x, y) covers pixels 8x..8x+8.
        assert_eq!(luma[(4 * 8 + 3) * w + 4 * 8 + 3], 0);
        assert_eq!(luma[0], 255);
        assert_eq!(decode_grey(w, w, luma), vec![line]);
    }

    #[test]
    fn svg_is_sized_in_mm_and_escaped() {
        let qr = Qr::for_print(&fake_line("ssh-ed25519", 95), "x").unwrap();
        let svg = qr.svg("a <b> & 'c'");
        let side = qr.side();
        assert!(svg.contains(&format!("width=\"{side}mm\"")), "{svg}");
        assert!(svg.contains(&format!("viewBox=\"0 0 {side} {side}\"")));
        assert!(svg.contains("<title>a &lt;b&gt; &amp; &apos;c&apos;</title>"));
        // A title with characters XML forbids (or that disguise text) stays a valid document.
        let hostile = "t\u{1b}[2K\r\u{1}\u{0}\u{85}\u{2028}\u{202e}\u{fffe}\u{ffff}<x>&";
        let svg = qr.svg(hostile);
        assert!(svg.contains("<title>t\u{fffd}[2K"), "{svg}");
        assert!(svg.chars().all(is_xml_char), "{svg:?}");
        assert!(svg.chars().all(|c| c == '\n' || !text::is_unsafe_char(c)));
        resvg::usvg::Tree::from_str(&svg, &resvg::usvg::Options::default()).unwrap();
        // ... which the parser would refuse raw (so the check above can fail).
        let raw = svg.replace("<title>t\u{fffd}", "<title>t\u{1}");
        assert!(resvg::usvg::Tree::from_str(&raw, &resvg::usvg::Options::default()).is_err());
        assert_eq!(mm(1.0), "1");
        assert_eq!(mm(0.8108), "0.811");
        assert_eq!(mm(12.5), "12.5");
    }
}
