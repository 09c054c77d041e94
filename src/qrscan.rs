//! Reading the CA key lines back from a picture of their QR codes (`import-qr`): a scan or a
//! phone photo of the key sheet, or a screenshot or file of `pubkey --format png`.
//!
//! Everything here is hostile input, and every step is bounded:
//! - **Bytes.** The file is read with [`crate::fsx::limit::IMAGE`] (50 MiB) at most.
//! - **Format.** PNG and JPEG only, told by their first bytes (not the file name); anything
//!   else is refused by name (GIF, WebP, HEIC, PDF, SVG…) with a way to convert it.
//! - **Pixels.** The header's dimensions are checked *before* any pixel is decoded: at most
//!   [`MAX_PIXELS`] (50 megapixels: an A4 page scanned at 600 dpi is 35, a phone photo 12 to
//!   48). The decoder itself may allocate at most [`MAX_DECODE_BYTES`] (`image`'s `Limits`), so
//!   a 16-bit RGBA image is refused above 32 megapixels.
//! - **Memory.** The picture becomes one 8-bit greyscale copy (transparent pixels count as
//!   white paper); codes are searched in a copy of at most [`DETECT_MAX_PIXELS`], made by
//!   averaging when the picture is larger. All told the command stays under about 350 MiB
//!   (measured: docs/hosts.md, section 2.5).
//! - **Time.** The search runs in a worker thread; no pass starts after [`TIMEOUT`], and
//!   [`GRACE`] later the command gives up with an error (a picture full of finder-like
//!   patterns can make the detector's grouping of them into codes take hours); the worker
//!   dies with the process.
//!
//! The search ([`find_codes`]) tries the picture as it is, then cheap variants of it
//! ([`Variant`]: smoothed, halved, doubled, tripled, thresholded locally), each a linear pass
//! over the pixels, then a page in 9 overlapping [`tiles`], then a second, independent decoder
//! (rxing, after ZXing: [`zxing`]) on what rqrr left, then each code seen but not read cut out
//! and turned upright; a picture that one code fills stops at the first pass that reads it.
//! Each code is kept once, with its corners in the picture, and the codes come out in the
//! order a reader of the sheet sees them ([`sheet_order`]): top to bottom, left to right, the
//! page's "up" taken from the codes themselves (a photo taken sideways or upside down reads
//! the same), so the sheet's primary CA, above the backups, comes first.
//! A code whose finder patterns were seen but that no pass could read is counted
//! ([`Scan::unreadable`]): `import-qr` refuses then, rather than leave a backup CA out unseen.
//!
//! The payloads are then checked ([`ca_keys`]): each must be OpenSSH public key lines of a
//! CA algorithm and nothing else (`#` comment lines allowed, as in the bundle of
//! `pubkey --format png --bundle`, which holds several lines in one code). Nothing here
//! prints: `cmd/import_qr.rs` does.

use std::io::Cursor;
use std::time::{Duration, Instant};

use image::{DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use ssh_key::public::KeyData;
use ssh_key::PublicKey;

use crate::error::{Error, Result};
use crate::export::plain_comment;
use crate::key::{self, Algorithm};
use crate::text;

/// The most pixels a picture may have (checked from its header, before decoding).
pub const MAX_PIXELS: u64 = 50_000_000;
/// The most the image decoder may allocate for one picture (its pixels in their own format).
pub const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;
/// Codes are searched in a copy of at most this many pixels (averaged down when larger).
pub const DETECT_MAX_PIXELS: u64 = 16_000_000;
/// No pass of the search starts after this long; one that is still running this much later
/// again ([`GRACE`]) is given up (see the module documentation).
pub const TIMEOUT: Duration = Duration::from_secs(60);
/// How long a pass that started before [`TIMEOUT`] may still run.
pub const GRACE: Duration = Duration::from_secs(15);

/// The picture formats read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Png => "PNG",
            Format::Jpeg => "JPEG",
        }
    }
}

/// The format of `bytes` from their first bytes; an error naming what they are otherwise.
pub fn format_of(bytes: &[u8]) -> Result<Format> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(Format::Png);
    }
    if bytes.starts_with(b"\xff\xd8\xff") {
        return Ok(Format::Jpeg);
    }
    let head = &bytes[..bytes.len().min(64)];
    let has = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    let what = if bytes.is_empty() {
        "empty"
    } else if head.starts_with(b"GIF8") {
        "a GIF image"
    } else if head.starts_with(b"RIFF") && has(b"WEBP") {
        "a WebP image"
    } else if has(b"ftypheic") || has(b"ftypheix") || has(b"ftypmif1") || has(b"ftypavif") {
        "a HEIC/AVIF image (as iPhones save photos)"
    } else if head.starts_with(b"%PDF") {
        "a PDF document"
    } else if has(b"<svg") || head.starts_with(b"<?xml") {
        "an SVG document"
    } else if head.starts_with(b"BM") {
        "a BMP image"
    } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        "a TIFF image"
    } else if key::key_type(&String::from_utf8_lossy(head)).starts_with("ssh-")
        || key::key_type(&String::from_utf8_lossy(head)).starts_with("ecdsa-")
    {
        "an OpenSSH key file, not a picture"
    } else {
        "not a PNG or JPEG image"
    };
    let hint = if what.starts_with("an OpenSSH") {
        "give a public key file to 'host-config --ca-pubkey FILE' directly; import-qr reads pictures of QR codes"
    } else if what.starts_with("an SVG") {
        "render it first, e.g. 'rsvg-convert -d 300 -p 300 sheet.svg > sheet.png' (or take the key lines from the SVG's text with 'pubkey' on the custodian's side)"
    } else {
        "import-qr reads PNG and JPEG: save or convert the scan or photo as one, e.g. 'convert photo.heic photo.jpg'"
    };
    Err(Error::invalid(format!("the file is {what}")).with_hint(hint))
}

/// A picture as 8-bit greyscale.
pub struct Picture {
    pub format: Format,
    pub grey: GrayImage,
}

/// Decode a PNG or JPEG picture, bounded (see the module documentation): the dimensions are
/// checked before any pixel is decoded.
pub fn decode(bytes: &[u8]) -> Result<Picture> {
    let format = format_of(bytes)?;
    let name = format.name();
    let broken = |e: image::ImageError| {
        let why = match &e {
            image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                "it is truncated".to_string()
            }
            image::ImageError::Limits(_) => format!(
                "decoding it would need more than {} MiB",
                MAX_DECODE_BYTES / (1024 * 1024)
            ),
            e => text::escape(&e.to_string()).into_owned(),
        };
        Error::invalid(format!("cannot read the {name} image: {why}")).with_hint(
            "the file is damaged or incomplete: copy it again, or scan or photograph the sheet again",
        )
    };
    let mut reader = ImageReader::with_format(
        Cursor::new(bytes),
        match format {
            Format::Png => ImageFormat::Png,
            Format::Jpeg => ImageFormat::Jpeg,
        },
    );
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let image = crate::panic_guard::quietly(std::panic::AssertUnwindSafe(move || {
        let decoder = reader.into_decoder().map_err(broken)?;
        let (w, h) = decoder.dimensions();
        check_dimensions(w, h)?;
        // The decoder's buffer: its pixels in their own format (a 16-bit RGBA pixel is 8 bytes).
        if decoder.total_bytes() > MAX_DECODE_BYTES {
            return Err(Error::refused(format!(
                "the image is {w}×{h} pixels of {:?}: decoding it would need {} MiB, more than the {} MiB import-qr allows",
                decoder.color_type(),
                decoder.total_bytes() / (1024 * 1024),
                MAX_DECODE_BYTES / (1024 * 1024)
            ))
            .with_hint("save it as 8-bit greyscale or RGB, or scale it down"));
        }
        DynamicImage::from_decoder(decoder).map_err(broken)
    }))
    .ok_or_else(|| decoder_panicked(name))??;
    Ok(Picture {
        format,
        grey: greyscale(image),
    })
}

fn decoder_panicked(name: &str) -> Error {
    Error::invalid(format!(
        "cannot read the {name} image: the decoder failed on it (an internal error)"
    ))
    .with_hint("the file is damaged or made to break decoders: scan or photograph the sheet again")
}

/// Refuse a picture of more than [`MAX_PIXELS`], or an empty one.
pub fn check_dimensions(w: u32, h: u32) -> Result<()> {
    let pixels = u64::from(w) * u64::from(h);
    if pixels == 0 {
        return Err(Error::invalid(format!(
            "the image is {w}×{h} pixels: empty"
        )));
    }
    if pixels > MAX_PIXELS {
        return Err(Error::refused(format!(
            "the image is {w}×{h} pixels ({:.1} megapixels); import-qr reads at most {} megapixels",
            pixels as f64 / 1e6,
            MAX_PIXELS / 1_000_000
        ))
        .with_hint("scan at 300 dpi (an A4 page is then 8.7 megapixels), or scale the picture down, e.g. 'convert big.png -resize 50% small.png'"));
    }
    Ok(())
}

/// The picture in 8-bit grey; a transparent pixel is white paper (a screenshot's transparent
/// background must not turn black and swallow the dark modules).
fn greyscale(image: DynamicImage) -> GrayImage {
    if !image.color().has_alpha() {
        return image.into_luma8();
    }
    let la = image.into_luma_alpha8();
    let (w, h) = la.dimensions();
    let mut grey = GrayImage::new(w, h);
    for (out, px) in grey.pixels_mut().zip(la.pixels()) {
        let [l, a] = px.0;
        let (l, a) = (u32::from(l), u32::from(a));
        out.0[0] = ((l * a + 255 * (255 - a) + 127) / 255) as u8;
    }
    grey
}

/// A point in the picture, in pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

/// One QR code found in a picture.
#[derive(Clone, Debug)]
pub struct Code {
    /// What it holds, as bytes.
    pub payload: Vec<u8>,
    /// Its corners in the picture: top left, top right, bottom right, bottom left, as the code
    /// reads.
    pub corners: [Point; 4],
}

impl Code {
    fn centre(&self) -> Point {
        let x = self.corners.iter().map(|p| p.x).sum::<f64>() / 4.0;
        let y = self.corners.iter().map(|p| p.y).sum::<f64>() / 4.0;
        Point { x, y }
    }

    /// The length of its top edge, in pixels.
    fn side(&self) -> f64 {
        let [a, b, ..] = self.corners;
        (b.x - a.x).hypot(b.y - a.y)
    }
}

/// What the search found.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    /// Every code that decoded, once each, in the sheet's order.
    pub codes: Vec<Code>,
    /// Codes whose finder patterns were found, away from every code that decoded, that no pass
    /// could read.
    pub unreadable: usize,
    /// The passes that were run.
    pub passes: Vec<Pass>,
    /// The deadline came before every pass had run.
    pub incomplete: bool,
}

/// One pass of the search: its name, how many new codes it found, how long it took.
#[derive(Clone, Debug)]
pub struct Pass {
    pub name: &'static str,
    pub new: usize,
    pub time: Duration,
}

/// The variants of the picture the search tries, in this order. The detector finds a code's
/// finder patterns by the run lengths of one pixel row, and misses codes whose modules are
/// too few pixels (under 3), or some unlucky sizes (about 2.6 to 2.9 and 3.8 px, where the
/// rows alias); and its threshold follows the light along a row only. So the picture is also
/// tried at other scales (½, 1¼, 1½, 1¾, 2 and 3 times), smoothed (noise, JPEG blocks) and thresholded
/// over a square around each pixel (shadows). Every variant runs: a sheet's small backup
/// codes may need one, its primary another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    AsIs,
    Smoothed,
    Halved,
    Doubled,
    SmoothedDoubled,
    DoubledSmoothed,
    Tripled,
    SmoothedTripled,
    OneAndAHalf,
    OneAndAQuarter,
    OneAndThreeQuarters,
    Thresholded,
    DoubledThresholded,
}

impl Variant {
    pub const ALL: [Variant; 13] = [
        Variant::AsIs,
        Variant::Smoothed,
        Variant::Halved,
        Variant::Doubled,
        Variant::SmoothedDoubled,
        Variant::DoubledSmoothed,
        Variant::Tripled,
        Variant::SmoothedTripled,
        Variant::OneAndAHalf,
        Variant::OneAndAQuarter,
        Variant::OneAndThreeQuarters,
        Variant::Thresholded,
        Variant::DoubledThresholded,
    ];

    /// The variants each tile of a page is searched in (see [`tiles`]); the enlarged ones
    /// only where they fit (a page scanned at 100 to 150 dpi).
    pub const TILES: [Variant; 6] = [
        Variant::AsIs,
        Variant::Smoothed,
        Variant::Thresholded,
        Variant::Doubled,
        Variant::SmoothedDoubled,
        Variant::Tripled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::AsIs => "as is",
            Variant::Smoothed => "smoothed",
            Variant::Halved => "halved",
            Variant::Doubled => "doubled",
            Variant::SmoothedDoubled => "doubled, then smoothed",
            Variant::DoubledSmoothed => "smoothed, then doubled",
            Variant::SmoothedTripled => "tripled, then smoothed",
            Variant::OneAndAHalf => "one and a half times",
            Variant::OneAndAQuarter => "1.25 times",
            Variant::OneAndThreeQuarters => "1.75 times",
            Variant::Tripled => "tripled",
            Variant::Thresholded => "local threshold",
            Variant::DoubledThresholded => "doubled, local threshold",
        }
    }

    /// This variant of `base` and the factor from its pixels to `base`'s, or `None` where it
    /// does not apply: halving a picture under 300 pixels a side, enlarging one beyond
    /// [`DETECT_MAX_PIXELS`].
    fn of(self, base: &GrayImage) -> Option<(GrayImage, f64)> {
        let pixels = u64::from(base.width()) * u64::from(base.height());
        let fits = |k: u64| pixels.saturating_mul(k * k) <= DETECT_MAX_PIXELS;
        match self {
            Variant::AsIs => Some((base.clone(), 1.0)),
            Variant::Smoothed => Some((smooth(base), 1.0)),
            Variant::Halved => {
                (base.width().min(base.height()) >= 300).then(|| (shrink(base, 2), 2.0))
            }
            Variant::Doubled => fits(2).then(|| (enlarge(base, 2), 0.5)),
            Variant::SmoothedDoubled => fits(2).then(|| (smooth(&enlarge(base, 2)), 0.5)),
            Variant::DoubledSmoothed => fits(2).then(|| (enlarge(&smooth(base), 2), 0.5)),
            Variant::SmoothedTripled => fits(3).then(|| (smooth(&enlarge(base, 3)), 1.0 / 3.0)),
            Variant::OneAndAHalf => fits(3).then(|| (shrink(&enlarge(base, 3), 2), 2.0 / 3.0)),
            Variant::OneAndAQuarter => fits(2).then(|| resized(base, 1.25)),
            Variant::OneAndThreeQuarters => fits(2).then(|| resized(base, 1.75)),
            Variant::Tripled => fits(3).then(|| (enlarge(base, 3), 1.0 / 3.0)),
            Variant::Thresholded => Some((local_threshold(base), 1.0)),
            Variant::DoubledThresholded => {
                fits(2).then(|| (local_threshold(&enlarge(base, 2)), 0.5))
            }
        }
    }
}

/// The tiles of a picture at least [`TILED_SIDE`] pixels on its shorter side: 3×3 of them,
/// each 60 % of its width and height, overlapping. The detector does better on a part of a
/// page than on the whole (its threshold follows a window an eighth of the picture wide, and
/// finder patterns of several codes and of text compete): a sheet's backup code that the
/// whole page hides is found in a tile. `(x, y, width, height)`.
fn tiles(base: &GrayImage) -> Vec<(u32, u32, u32, u32)> {
    let (w, h) = base.dimensions();
    if w.min(h) < TILED_SIDE {
        return Vec::new();
    }
    let (tw, th) = (w * 3 / 5, h * 3 / 5);
    let mut out = Vec::new();
    for j in 0..3 {
        for i in 0..3 {
            out.push(((w - tw) * i / 2, (h - th) * j / 2, tw, th));
        }
    }
    out
}

/// Pictures smaller than this on their shorter side are not cut into [`tiles`].
const TILED_SIDE: u32 = 700;
/// Tiles are enlarged (doubled, tripled) only up to this many pixels.
const TILE_ENLARGED_PIXELS: u64 = 4_000_000;

/// Find every QR code in `grey` (see the module documentation), with a worker thread and a
/// deadline of [`TIMEOUT`].
pub fn find_codes(grey: GrayImage) -> Result<Scan> {
    find_codes_within(grey, TIMEOUT)
}

/// [`find_codes`] with another deadline (tests).
pub fn find_codes_within(grey: GrayImage, timeout: Duration) -> Result<Scan> {
    find_codes_with(grey, timeout, &Variant::ALL)
}

/// [`find_codes`] with another deadline and only these variants of the picture, in this order
/// (tests and experiments).
pub fn find_codes_with(grey: GrayImage, timeout: Duration, variants: &[Variant]) -> Result<Scan> {
    let variants = variants.to_vec();
    let (tx, rx) = std::sync::mpsc::channel();
    let deadline = Instant::now() + timeout;
    std::thread::Builder::new()
        .name("import-qr".into())
        .spawn(move || {
            let scan = crate::panic_guard::quietly(move || search(&grey, deadline, &variants));
            let _ = tx.send(scan);
        })
        .map_err(|e| Error::io("cannot start the QR code search", e))?;
    match rx.recv_timeout(timeout + GRACE.min(timeout)) {
        Ok(Some(scan)) => Ok(scan),
        Ok(None) => Err(Error::invalid(
            "the QR code search failed on this image (an internal error in the decoder)",
        )
        .with_hint("crop the picture to the QR codes, or scan or photograph the sheet again")),
        Err(_) => Err(Error::invalid(format!(
            "gave up looking for QR codes after {} s",
            (timeout + GRACE.min(timeout)).as_secs()
        ))
        .with_hint("the picture holds a great many patterns that look like parts of QR codes: crop it to the codes, or scan the sheet at 300 dpi")),
    }
}

/// The passes, in the worker thread.
fn search(grey: &GrayImage, deadline: Instant, variants: &[Variant]) -> Scan {
    let (fitted, scale) = fit(grey, DETECT_MAX_PIXELS);
    let (base, pad) = padded(&fitted);
    // Corners are kept in `base`'s pixels until the end.
    let mut found: Vec<Code> = Vec::new();
    let mut failed: Vec<[Point; 4]> = Vec::new();
    let mut scan = Scan::default();
    let add = |found: &mut Vec<Code>, codes: Vec<Code>| {
        let before = found.len();
        for code in codes {
            if !found.iter().any(|c| c.payload == code.payload) {
                found.push(code);
            }
        }
        found.len() - before
    };
    let late = |scan: &mut Scan| {
        let late = Instant::now() >= deadline;
        scan.incomplete |= late;
        late
    };
    // The picture without the border: the detector's threshold follows a window an eighth of
    // the picture wide, and a code it misses in one width it may read in another.
    {
        let started = Instant::now();
        let (codes, misses) = detect_at(&fitted, 1.0, (pad, pad));
        let new = add(&mut found, codes);
        failed.extend(misses);
        scan.passes.push(Pass {
            name: "as is, without a border",
            new,
            time: started.elapsed(),
        });
    }
    for &variant in variants {
        if variant != Variant::AsIs && late(&mut scan) {
            break;
        }
        if fills(&found, &base, pad) && failed.is_empty() {
            return finish(scan, found, failed, pad, scale);
        }
        let started = Instant::now();
        let Some((img, factor)) = variant.of(&base) else {
            continue;
        };
        let (codes, misses) = detect(&img, factor);
        drop(img);
        let new = add(&mut found, codes);
        scan.passes.push(Pass {
            name: variant.name(),
            new,
            time: started.elapsed(),
        });
        failed.extend(misses);
    }
    drop(fitted);
    if fills(&found, &base, pad) && failed.is_empty() {
        return finish(scan, found, failed, pad, scale);
    }
    // A large picture in tiles.
    let started = Instant::now();
    let mut new = 0;
    let tiled = tiles(&base);
    for &(x, y, w, h) in &tiled {
        let tile = image::imageops::crop_imm(&base, x, y, w, h).to_image();
        for variant in Variant::TILES {
            if late(&mut scan) {
                break;
            }
            let Some((img, factor)) = variant.of(&tile) else {
                continue;
            };
            if factor < 1.0
                && u64::from(img.width()) * u64::from(img.height()) > TILE_ENLARGED_PIXELS
            {
                continue;
            }
            let (codes, misses) = detect_at(&img, factor, (x, y));
            new += add(&mut found, codes);
            failed.extend(misses);
        }
    }
    if !tiled.is_empty() {
        scan.passes.push(Pass {
            name: "in 9 tiles",
            new,
            time: started.elapsed(),
        });
    }
    // The second decoder, on what rqrr left.
    if !late(&mut scan) {
        let started = Instant::now();
        let codes = zxing(&base, &found, deadline);
        let new = add(&mut found, codes);
        scan.passes.push(Pass {
            name: "rxing",
            new,
            time: started.elapsed(),
        });
    }
    // Each code that was seen but not read, once more on its own: cut out, turned upright
    // and tried in every variant.
    let started = Instant::now();
    let mut new = 0;
    let mut areas = unique_areas(failed.iter().filter(|f| !near_any(f, &found)));
    areas.truncate(MAX_RETRIES);
    for corners in areas {
        if late(&mut scan) {
            break;
        }
        if let Some(payload) = retry(&base, &corners) {
            new += add(&mut found, vec![Code { payload, corners }]);
        }
    }
    if !failed.is_empty() {
        scan.passes.push(Pass {
            name: "each unread code on its own",
            new,
            time: started.elapsed(),
        });
    }
    finish(scan, found, failed, pad, scale)
}

/// The scan with `found` in the sheet's order and in the picture's pixels, and the codes
/// seen but not read counted.
fn finish(
    mut scan: Scan,
    mut found: Vec<Code>,
    failed: Vec<[Point; 4]>,
    pad: u32,
    scale: f64,
) -> Scan {
    scan.unreadable = unique_areas(failed.iter().filter(|f| !near_any(f, &found))).len();
    let to_picture = |p: Point| Point {
        x: (p.x - f64::from(pad)) * scale,
        y: (p.y - f64::from(pad)) * scale,
    };
    for code in &mut found {
        code.corners = code.corners.map(to_picture);
    }
    scan.codes = sheet_order(found);
    scan
}

/// Whether the codes found cover most of the picture (its border aside), so that no other
/// code can hide beside them: a screenshot or a file of one code, a photo of it from close
/// by. The search stops there; a page (the sheet) is searched in every variant.
fn fills(found: &[Code], base: &GrayImage, pad: u32) -> bool {
    let area = |c: &Code| {
        // The shoelace formula.
        let p = &c.corners;
        (0..4)
            .map(|i| p[i].x * p[(i + 1) % 4].y - p[(i + 1) % 4].x * p[i].y)
            .sum::<f64>()
            .abs()
            / 2.0
    };
    let covered: f64 = found.iter().map(area).sum();
    let border = 2.0 * f64::from(pad);
    let (w, h) = (f64::from(base.width()), f64::from(base.height()));
    let picture = ((w - border) * (h - border)).max(1.0);
    !found.is_empty() && covered >= 0.4 * picture
}

/// The most codes seen but not read that are tried again on their own.
const MAX_RETRIES: usize = 16;

/// A code seen at `corners` of `base` but not read: its area (and a margin of a fifth of its
/// side) cut out, turned upright by the angle of its top edge, and searched in every variant;
/// what it holds if one reads it.
fn retry(base: &GrayImage, corners: &[Point; 4]) -> Option<Vec<u8>> {
    let (x0, x1) = corners.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.x), hi.max(p.x))
    });
    let (y0, y1) = corners.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.y), hi.max(p.y))
    });
    let margin = ((x1 - x0).max(y1 - y0) / 5.0).max(8.0);
    let clamp = |v: f64, max: u32| v.clamp(0.0, f64::from(max)) as u32;
    let (cx0, cy0) = (
        clamp(x0 - margin, base.width()),
        clamp(y0 - margin, base.height()),
    );
    let (cx1, cy1) = (
        clamp(x1 + margin, base.width()),
        clamp(y1 + margin, base.height()),
    );
    if cx1 <= cx0 + 8 || cy1 <= cy0 + 8 {
        return None;
    }
    let crop = image::imageops::crop_imm(base, cx0, cy0, cx1 - cx0, cy1 - cy0).to_image();
    let [a, b, ..] = *corners;
    let upright = rotate(&crop, -(b.y - a.y).atan2(b.x - a.x));
    let (upright, _) = padded(&upright);
    for variant in Variant::ALL {
        let Some((img, _)) = variant.of(&upright) else {
            continue;
        };
        if let Some(code) = detect(&img, 1.0).0.into_iter().next() {
            return Some(code.payload);
        }
    }
    None
}

/// `grey` turned by `angle` radians about its centre (bilinear), on a canvas large enough for
/// all of it; the new corners are the paper's colour.
fn rotate(grey: &GrayImage, angle: f64) -> GrayImage {
    let (w, h) = (f64::from(grey.width()), f64::from(grey.height()));
    let (s, c) = angle.sin_cos();
    let nw = (w * c.abs() + h * s.abs()).ceil().max(1.0);
    let nh = (w * s.abs() + h * c.abs()).ceil().max(1.0);
    let px = grey.as_raw();
    let (iw, ih) = (grey.width() as i64, grey.height() as i64);
    let paper = f64::from(paper_colour(grey));
    let at = |x: i64, y: i64| -> f64 {
        if x < 0 || y < 0 || x >= iw || y >= ih {
            paper
        } else {
            f64::from(px[(y * iw + x) as usize])
        }
    };
    let mut out = Vec::with_capacity((nw * nh) as usize);
    for y in 0..nh as u32 {
        for x in 0..nw as u32 {
            let (dx, dy) = (f64::from(x) + 0.5 - nw / 2.0, f64::from(y) + 0.5 - nh / 2.0);
            // The source of this pixel: the inverse turn.
            let sx = dx * c + dy * s + w / 2.0 - 0.5;
            let sy = -dx * s + dy * c + h / 2.0 - 0.5;
            let (fx, fy) = (sx.floor(), sy.floor());
            let (tx, ty) = (sx - fx, sy - fy);
            let (ix, iy) = (fx as i64, fy as i64);
            let v = (at(ix, iy) * (1.0 - tx) + at(ix + 1, iy) * tx) * (1.0 - ty)
                + (at(ix, iy + 1) * (1.0 - tx) + at(ix + 1, iy + 1) * tx) * ty;
            out.push(v.round().clamp(0.0, 255.0) as u8);
        }
    }
    GrayImage::from_raw(nw as u32, nh as u32, out).unwrap_or_else(|| grey.clone())
}

/// The distinct areas `corners` cover (one code missed by several passes counts once).
fn unique_areas<'a>(corners: impl Iterator<Item = &'a [Point; 4]>) -> Vec<[Point; 4]> {
    let mut areas: Vec<[Point; 4]> = Vec::new();
    for c in corners {
        if !areas.iter().any(|a| overlaps(a, c)) {
            areas.push(*c);
        }
    }
    areas
}

/// Whether the code seen at `corners` may be one of `codes`, or a ghost of them: their
/// bounding boxes meet (the detector also groups finder patterns of two codes, or of a code
/// and the text beside it, into a quadrilateral that reads as nothing), or it is no square at
/// all (see [`square`]).
fn near_any(corners: &[Point; 4], codes: &[Code]) -> bool {
    let bbox = |q: &[Point; 4]| {
        q.iter().fold(
            (f64::MAX, f64::MIN, f64::MAX, f64::MIN),
            |(x0, x1, y0, y1), p| (x0.min(p.x), x1.max(p.x), y0.min(p.y), y1.max(p.y)),
        )
    };
    let (ax0, ax1, ay0, ay1) = bbox(corners);
    !square(corners)
        || codes.iter().any(|c| {
            let (bx0, bx1, by0, by1) = bbox(&c.corners);
            ax0 < bx1 && bx0 < ax1 && ay0 < by1 && by0 < ay1
        })
}

/// Whether `corners` are those of a square as a scan or a photo taken straight on shows one:
/// sides and diagonals within a third of each other, at least 30 pixels a side (21 modules).
fn square(corners: &[Point; 4]) -> bool {
    let d = |a: Point, b: Point| (b.x - a.x).hypot(b.y - a.y);
    let [a, b, c, e] = *corners;
    let sides = [d(a, b), d(b, c), d(c, e), d(e, a)];
    let (lo, hi) = sides
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), s| (lo.min(*s), hi.max(*s)));
    let (d1, d2) = (d(a, c), d(b, e));
    lo >= 30.0 && hi <= lo * 1.33 && d1.max(d2) <= d1.min(d2) * 1.33
}

/// Whether the centre of either quadrilateral lies within the other's bounding box.
fn overlaps(a: &[Point; 4], b: &[Point; 4]) -> bool {
    let inside = |p: Point, q: &[Point; 4]| {
        let (x0, x1) = q.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
            (lo.min(p.x), hi.max(p.x))
        });
        let (y0, y1) = q.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
            (lo.min(p.y), hi.max(p.y))
        });
        (x0..=x1).contains(&p.x) && (y0..=y1).contains(&p.y)
    };
    let centre = |q: &[Point; 4]| Point {
        x: q.iter().map(|p| p.x).sum::<f64>() / 4.0,
        y: q.iter().map(|p| p.y).sum::<f64>() / 4.0,
    };
    inside(centre(a), b) || inside(centre(b), a)
}

/// One detector run on `img`, a variant `factor` times smaller than the picture searched: the
/// codes that decoded, and the corners of those that did not, in that picture's pixels.
fn detect(img: &GrayImage, factor: f64) -> (Vec<Code>, Vec<[Point; 4]>) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let raw = img.as_raw();
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| raw[y * w + x]);
    let mut codes = Vec::new();
    let mut misses = Vec::new();
    for grid in prepared.detect_grids() {
        let corners = grid.bounds.map(|p| Point {
            x: f64::from(p.x) * factor,
            y: f64::from(p.y) * factor,
        });
        let mut payload = Vec::new();
        match grid.decode_to(&mut payload) {
            Ok(_) => codes.push(Code { payload, corners }),
            Err(_) => misses.push(corners),
        }
    }
    (codes, misses)
}

/// [`detect`] on a part of the picture searched whose top left corner is at `offset` in it:
/// the corners moved there.
fn detect_at(img: &GrayImage, factor: f64, offset: (u32, u32)) -> (Vec<Code>, Vec<[Point; 4]>) {
    let shift = |c: [Point; 4]| {
        c.map(|p| Point {
            x: p.x + f64::from(offset.0),
            y: p.y + f64::from(offset.1),
        })
    };
    let (codes, misses) = detect(img, factor);
    let codes = codes
        .into_iter()
        .map(|c| Code {
            corners: shift(c.corners),
            payload: c.payload,
        })
        .collect();
    (codes, misses.into_iter().map(shift).collect())
}

/// The codes a second, independent decoder reads in `base` once rqrr's passes are done:
/// rxing (after ZXing), whose detector finds finder patterns another way and reads codes
/// rqrr misses (measured: docs/hosts.md, section 2.5). Its reader reads one code at a time,
/// the one whose finder patterns fit best, so every code found is painted over with paper
/// first, then each code rxing reads, until it reads none ([`MAX_ZXING_CODES`] at most, none
/// after `deadline`), in `base` as it is and smoothed. (Its multi-code reader is not used: it
/// lists every triple of finder patterns that could be a code before reading any, and a
/// picture of finder patterns takes it gigabytes.)
fn zxing(base: &GrayImage, found: &[Code], deadline: Instant) -> Vec<Code> {
    let paper = paper_colour(base);
    let mut new: Vec<Code> = Vec::new();
    for smoothed in [false, true] {
        let mut img = if smoothed { smooth(base) } else { base.clone() };
        for code in found.iter().chain(&new) {
            paint_over(&mut img, &code.corners, paper);
        }
        for _ in 0..MAX_ZXING_CODES {
            if Instant::now() >= deadline {
                return new;
            }
            let Some(code) = zxing_one(&img) else {
                break;
            };
            paint_over(&mut img, &code.corners, paper);
            if found.iter().chain(&new).any(|c| c.payload == code.payload) {
                continue;
            }
            new.push(code);
        }
    }
    new
}

/// The most codes [`zxing`] reads in one picture.
const MAX_ZXING_CODES: usize = 16;

/// The code rxing's QR reader reads in `img` (trying harder), with corners where its finder
/// patterns' centres are (the fourth completes the parallelogram): three and a half modules
/// inside the code's corners, which is all [`sheet_order`] and [`fills`] need. Its payload is
/// the text it decoded (a key line is ASCII; anything else is refused later, by [`ca_keys`]).
fn zxing_one(img: &GrayImage) -> Option<Code> {
    use rxing::Reader;
    let (w, h) = img.dimensions();
    let source = rxing::Luma8LuminanceSource::new(img.as_raw().clone(), w, h).ok()?;
    let mut bitmap = rxing::BinaryBitmap::new(rxing::common::HybridBinarizer::new(source));
    let hints = rxing::DecodeHints {
        TryHarder: Some(true),
        ..rxing::DecodeHints::default()
    };
    let result = rxing::qrcode::QRCodeReader
        .decode_with_hints(&mut bitmap, &hints)
        .ok()?;
    // Bottom left, top left, top right (then an alignment pattern, if one was found).
    let p: Vec<Point> = result
        .getPoints()
        .iter()
        .map(|p| Point {
            x: f64::from(p.x),
            y: f64::from(p.y),
        })
        .collect();
    let [bl, tl, tr] = [*p.first()?, *p.get(1)?, *p.get(2)?];
    let br = Point {
        x: tr.x + bl.x - tl.x,
        y: tr.y + bl.y - tl.y,
    };
    Some(Code {
        payload: result.getText().as_bytes().to_vec(),
        corners: [tl, tr, br, bl],
    })
}

/// The bounding box of `corners` and a margin of a quarter of its side (a code's quiet zone,
/// and more for corners at its finder patterns' centres) filled with `paper`.
fn paint_over(img: &mut GrayImage, corners: &[Point; 4], paper: u8) {
    let (x0, x1, y0, y1) = corners.iter().fold(
        (f64::MAX, f64::MIN, f64::MAX, f64::MIN),
        |(x0, x1, y0, y1), p| (x0.min(p.x), x1.max(p.x), y0.min(p.y), y1.max(p.y)),
    );
    let margin = (x1 - x0).max(y1 - y0) / 4.0;
    let clamp = |v: f64, max: u32| v.clamp(0.0, f64::from(max)) as u32;
    let (w, h) = img.dimensions();
    for y in clamp(y0 - margin, h)..clamp(y1 + margin, h) {
        for x in clamp(x0 - margin, w)..clamp(x1 + margin, w) {
            img.put_pixel(x, y, image::Luma([paper]));
        }
    }
}

/// `grey` in a border of its own paper colour (the 95th percentile of its brightness), a
/// tenth of its shorter side wide (at least 16 pixels), and that width. A screenshot or a
/// tight crop leaves a code little or none of its quiet zone, and the detector's threshold
/// needs light around the finder patterns.
fn padded(grey: &GrayImage) -> (GrayImage, u32) {
    let (w, h) = grey.dimensions();
    let pad = (w.min(h) / 10).max(16);
    let paper = paper_colour(grey);
    let (nw, nh) = (w + 2 * pad, h + 2 * pad);
    let mut out = GrayImage::from_pixel(nw, nh, image::Luma([paper]));
    image::imageops::replace(&mut out, grey, i64::from(pad), i64::from(pad));
    (out, pad)
}

/// The paper's colour: the 95th percentile of the brightness.
fn paper_colour(grey: &GrayImage) -> u8 {
    let mut histogram = [0u64; 256];
    for &v in grey.as_raw() {
        histogram[usize::from(v)] += 1;
    }
    let total: u64 = histogram.iter().sum();
    let mut seen = 0;
    for (v, n) in histogram.iter().enumerate() {
        seen += n;
        if seen * 100 >= total * 95 {
            return v as u8;
        }
    }
    255
}

/// `grey` averaged down by a whole factor until it has at most `max` pixels, and that factor.
fn fit(grey: &GrayImage, max: u64) -> (GrayImage, f64) {
    let pixels = u64::from(grey.width()) * u64::from(grey.height());
    let mut k = 1u32;
    while pixels / u64::from(k * k) > max {
        k += 1;
    }
    if k == 1 {
        return (grey.clone(), 1.0);
    }
    (shrink(grey, k as usize), f64::from(k))
}

/// Average `k`×`k` blocks into one pixel (the last partial row and column are dropped).
fn shrink(grey: &GrayImage, k: usize) -> GrayImage {
    let (w, h) = (grey.width() as usize, grey.height() as usize);
    let (nw, nh) = ((w / k).max(1), (h / k).max(1));
    let px = grey.as_raw();
    let mut sums = vec![0u32; nw];
    let mut out = Vec::with_capacity(nw * nh);
    let n = (k * k) as u32;
    for oy in 0..nh {
        sums.iter_mut().for_each(|s| *s = 0);
        for y in oy * k..((oy + 1) * k).min(h) {
            let row = &px[y * w..y * w + w];
            for (ox, sum) in sums.iter_mut().enumerate() {
                let start = ox * k;
                *sum += row[start..(start + k).min(w)]
                    .iter()
                    .map(|&v| u32::from(v))
                    .sum::<u32>();
            }
        }
        out.extend(sums.iter().map(|s| (s / n) as u8));
    }
    GrayImage::from_raw(nw as u32, nh as u32, out).unwrap_or_else(|| grey.clone())
}

/// A 3×3 box blur, twice (close to a Gaussian of σ 1.2 px): speckle noise and JPEG ringing
/// smoothed out.
fn smooth(grey: &GrayImage) -> GrayImage {
    box3(&box3(grey))
}

/// The mean of each pixel's 3×3 neighbourhood (edges repeated), in two separable passes.
fn box3(grey: &GrayImage) -> GrayImage {
    let (w, h) = (grey.width() as usize, grey.height() as usize);
    let px = grey.as_raw();
    let mut across = vec![0u16; w * h];
    for y in 0..h {
        let row = &px[y * w..y * w + w];
        for x in 0..w {
            let l = row[x.saturating_sub(1)];
            let r = row[(x + 1).min(w - 1)];
            across[y * w + x] = u16::from(l) + u16::from(row[x]) + u16::from(r);
        }
    }
    let mut out = vec![0u8; w * h];
    for y in 0..h {
        let (up, down) = (y.saturating_sub(1), (y + 1).min(h - 1));
        for x in 0..w {
            let sum = across[up * w + x] + across[y * w + x] + across[down * w + x];
            out[y * w + x] = (sum / 9) as u8;
        }
    }
    GrayImage::from_raw(w as u32, h as u32, out).unwrap_or_else(|| grey.clone())
}

/// `base` scaled by `factor` (a triangle filter), and the factor back: a scale that is not
/// a whole number moves every module edge to another phase of the pixel grid, which reads
/// some pictures whose modules are an unlucky number of pixels (3.7 to 3.9) at no whole scale.
fn resized(base: &GrayImage, factor: f64) -> (GrayImage, f64) {
    let w = ((f64::from(base.width()) * factor).round() as u32).max(1);
    let h = ((f64::from(base.height()) * factor).round() as u32).max(1);
    let img = image::imageops::resize(base, w, h, image::imageops::FilterType::Triangle);
    (img, f64::from(base.width()) / f64::from(w))
}

/// `k` times the size (2 or 3), bilinear: modules of 2 to 3 pixels (a page scanned at 100
/// dpi) become 4 to 9, which the detector's finder-pattern scan resolves.
fn enlarge(grey: &GrayImage, k: usize) -> GrayImage {
    let (w, h) = (grey.width() as usize, grey.height() as usize);
    let px = grey.as_raw();
    let (nw, nh) = (w * k, h * k);
    // Output pixel o samples input (o + 0.5) / k - 0.5: the index below it and the weight of
    // the one after it, in 1/(2k) steps.
    let taps: Vec<(usize, usize, u32)> = (0..nw.max(nh))
        .map(|o| {
            let num = 2 * o + 1; // (o + 0.5) * 2
            let pos = num as i64 - k as i64; // ((o + 0.5) / k - 0.5) * 2k
            if pos <= 0 {
                (0, 0, 0)
            } else {
                let pos = pos as usize;
                (pos / (2 * k), pos / (2 * k) + 1, (pos % (2 * k)) as u32)
            }
        })
        .collect();
    let unit = 2 * k as u32;
    let mut out = vec![0u8; nw * nh];
    for oy in 0..nh {
        let (y0, y1, ty) = taps[oy];
        let (y0, y1) = (y0.min(h - 1), y1.min(h - 1));
        for ox in 0..nw {
            let (x0, x1, tx) = taps[ox];
            let (x0, x1) = (x0.min(w - 1), x1.min(w - 1));
            let p = |x: usize, y: usize| u32::from(px[y * w + x]);
            let top = p(x0, y0) * (unit - tx) + p(x1, y0) * tx;
            let bottom = p(x0, y1) * (unit - tx) + p(x1, y1) * tx;
            let v = top * (unit - ty) + bottom * ty;
            out[oy * nw + ox] = ((v + unit * unit / 2) / (unit * unit)) as u8;
        }
    }
    GrayImage::from_raw(nw as u32, nh as u32, out).unwrap_or_else(|| grey.clone())
}

/// Black where a pixel is darker than the mean of the square around it (a sixteenth of the
/// picture's shorter side) by a margin, white elsewhere: uneven light and shadows of a photo
/// flattened out.
fn local_threshold(grey: &GrayImage) -> GrayImage {
    let (w, h) = (grey.width() as usize, grey.height() as usize);
    let px = grey.as_raw();
    // Summed-area table, one row and column of zeros in front.
    let stride = w + 1;
    let mut sat = vec![0u64; stride * (h + 1)];
    for y in 0..h {
        let mut row = 0u64;
        for x in 0..w {
            row += u64::from(px[y * w + x]);
            sat[(y + 1) * stride + x + 1] = sat[y * stride + x + 1] + row;
        }
    }
    let r = (w.min(h) / 32).max(4);
    let mut out = vec![255u8; w * h];
    for y in 0..h {
        let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(h));
        for x in 0..w {
            let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(w));
            let sum = sat[y1 * stride + x1] + sat[y0 * stride + x0]
                - sat[y0 * stride + x1]
                - sat[y1 * stride + x0];
            let n = ((x1 - x0) * (y1 - y0)) as u64;
            // Darker than 90 % of the local mean: ink.
            if u64::from(px[y * w + x]) * 10 * n < sum * 9 {
                out[y * w + x] = 0;
            }
        }
    }
    GrayImage::from_raw(w as u32, h as u32, out).unwrap_or_else(|| grey.clone())
}

/// The codes in the order a reader of the page meets them: the page's "up" is the codes' own
/// (their mean orientation: every code of a sheet is printed upright), then rows top to
/// bottom (a code whose centre lies above the bottom of the row so far belongs to it), each
/// row left to right.
pub fn sheet_order(mut codes: Vec<Code>) -> Vec<Code> {
    if codes.len() < 2 {
        return codes;
    }
    let (mut sx, mut sy) = (0.0, 0.0);
    for c in &codes {
        let [a, b, ..] = c.corners;
        let len = (b.x - a.x).hypot(b.y - a.y);
        if len > 0.0 {
            sx += (b.x - a.x) / len;
            sy += (b.y - a.y) / len;
        }
    }
    let angle = sy.atan2(sx);
    let (cos, sin) = (angle.cos(), angle.sin());
    // The centre in page coordinates: the picture turned back by the codes' angle.
    let page = |c: &Code| {
        let p = c.centre();
        (p.x * cos + p.y * sin, -p.x * sin + p.y * cos)
    };
    codes.sort_by(|a, b| page(a).1.total_cmp(&page(b).1));
    let mut rows: Vec<Vec<Code>> = Vec::new();
    let mut row_bottom = f64::MIN;
    for c in codes {
        let (_, y) = page(&c);
        let half = c.side() / 2.0;
        match rows.last_mut() {
            Some(row) if y < row_bottom => {
                row_bottom = row_bottom.max(y + half);
                row.push(c);
            }
            _ => {
                row_bottom = y + half;
                rows.push(vec![c]);
            }
        }
    }
    rows.into_iter()
        .flat_map(|mut row| {
            row.sort_by(|a, b| page(a).0.total_cmp(&page(b).0));
            row
        })
        .collect()
}

/// A CA key read from a code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaKey {
    /// Its OpenSSH line as hosts get it: the key re-encoded, with its comment if that is plain
    /// text ([`plain_comment`]), else without one.
    pub line: String,
    pub key: KeyData,
    /// Which code it came from (1 = the first in the sheet's order).
    pub code: usize,
    /// A comment that was not plain text and was left out, as found.
    pub dropped_comment: Option<String>,
}

impl CaKey {
    pub fn fingerprint(&self) -> String {
        key::fingerprint(&self.key)
    }

    pub fn algorithm(&self) -> &'static str {
        Algorithm::of_key(&self.key).map_or("unknown", Algorithm::name)
    }
}

/// What the codes say besides their keys, for `cmd/` to show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keys {
    pub keys: Vec<CaKey>,
    /// `#` comment lines of the codes (a bundle names its revoked CAs so), with their code.
    pub comments: Vec<(usize, String)>,
    /// Keys found again in a later code (or picture): (code, fingerprint).
    pub repeats: Vec<(usize, String)>,
}

/// The longest excerpt of a payload a message shows.
const EXCERPT: usize = 60;

/// The CA keys the codes hold, in their order: every payload must be one or more OpenSSH
/// public key lines of a CA algorithm (see the module documentation); `#` lines and blank
/// lines are skipped. `known`: keys already taken from an earlier picture, not repeated.
/// `name(i)` names code `i` (1-based) for messages.
pub fn ca_keys(codes: &[Code], known: &[KeyData], name: &dyn Fn(usize) -> String) -> Result<Keys> {
    let mut out = Keys::default();
    for (i, code) in codes.iter().enumerate() {
        let n = i + 1;
        let what = name(n);
        let hint = "import-qr reads the QR codes of the key sheet ('breakglass-ca pubkey --format sheet') or of 'pubkey --format png|svg|qr': photograph or scan only those codes";
        let Ok(payload) = std::str::from_utf8(&code.payload) else {
            return Err(Error::invalid(format!(
                "{what} holds {} bytes of binary data, not an OpenSSH public key line",
                code.payload.len()
            ))
            .with_hint(hint));
        };
        if key::holds_private_key(payload) {
            return Err(Error::refused(format!(
                "{what} holds a PRIVATE key, not a CA public key; nothing was printed"
            ))
            .with_hint("a private key must never be printed or photographed: whoever has this picture has that key, so it must not be trusted anywhere; the CA's public key comes from its sheet or 'breakglass-ca pubkey'"));
        }
        let mut lines = 0;
        for line in payload.lines().map(str::trim) {
            if line.is_empty() {
                continue;
            }
            if line.starts_with('#') {
                out.comments.push((n, excerpt(line, 120)));
                continue;
            }
            lines += 1;
            let at = if payload.lines().filter(|l| !l.trim().is_empty()).count() > 1 {
                format!("{what}, line {lines}")
            } else {
                what.clone()
            };
            let key = ca_line(line, &at, hint)?;
            let data = key.key_data().clone();
            if known.contains(&data) || out.keys.iter().any(|k| k.key == data) {
                out.repeats.push((n, key::fingerprint(&data)));
                continue;
            }
            let (line, dropped_comment) = canonical(&key)?;
            out.keys.push(CaKey {
                line,
                key: data,
                code: n,
                dropped_comment,
            });
        }
        if lines == 0 {
            return Err(Error::invalid(format!(
                "{what} holds no OpenSSH public key line: {}",
                excerpt(payload, EXCERPT)
            ))
            .with_hint(hint));
        }
    }
    Ok(out)
}

/// One key line of a code, checked as a CA key: not a certificate, an OpenSSH public key of
/// a CA algorithm, one sshd can read.
fn ca_line(line: &str, what: &str, hint: &str) -> Result<PublicKey> {
    if key::is_certificate(line) {
        return Err(Error::refused(format!(
            "{what} holds an OpenSSH certificate ({}), not a CA public key",
            text::escape(key::key_type(line))
        ))
        .with_hint(hint));
    }
    let key = key::parse_line(line).map_err(|e| {
        Error::invalid(format!(
            "{what} holds text that is not an OpenSSH public key line ({e}): {}",
            excerpt(line, EXCERPT)
        ))
        .with_hint(hint)
    })?;
    if Algorithm::of_key(key.key_data()).is_none() {
        return Err(Error::refused(format!(
            "{what} holds a {} key, which cannot be a breakglass CA key",
            text::escape(key::key_type(line))
        ))
        .with_hint("a breakglass CA key is ecdsa-p256, ecdsa-p384, ed25519 or RSA of 2048, 3072 or 4096 bits"));
    }
    if let Some(why) = key::sshd_cannot_read(&key) {
        return Err(Error::refused(format!(
            "{what} holds a key sshd cannot read, so hosts would never trust it: its {why}"
        ))
        .with_hint(hint));
    }
    Ok(key)
}

/// The key's line as hosts get it, and the comment left out if it was not plain text.
fn canonical(key: &PublicKey) -> Result<(String, Option<String>)> {
    let original = key.comment();
    let (comment, dropped) = match plain_comment(original) {
        Some(c) => (c, None),
        None if original.trim().is_empty() => ("", None),
        None => ("", Some(original.to_string())),
    };
    let line = PublicKey::new(key.key_data().clone(), comment)
        .to_openssh()
        .map_err(|e| Error::ssh("cannot encode the CA public key", e))?;
    Ok((line, dropped))
}

/// At most `max` characters of `s`, escaped and quoted, `...` when cut.
fn excerpt(s: &str, max: usize) -> String {
    let shown = text::escape(s);
    let mut chars = shown.chars();
    let head: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        format!("'{head}'...")
    } else {
        format!("'{head}'")
    }
}

/// A fingerprint as typed from the sheet, reduced to what is compared: spaces (and any
/// whitespace) and the `SHA256:` prefix dropped, lowercase. `None` if what is left is not the
/// 43 base64 characters of a SHA-256 fingerprint.
pub fn normalise_fingerprint(typed: &str) -> Option<String> {
    let joined: String = typed.split_whitespace().collect();
    let hash = match joined.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("sha256:") => &joined[7..],
        _ => joined.as_str(),
    };
    let hash = hash.trim_end_matches('=');
    let base64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/';
    (hash.len() == 43 && hash.chars().all(base64)).then(|| hash.to_ascii_lowercase())
}

/// Whether `key`'s fingerprint is `expected` ([`normalise_fingerprint`]ed).
pub fn matches(key: &KeyData, expected: &str) -> bool {
    normalise_fingerprint(&key::fingerprint(key)).is_some_and(|fp| fp == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_as_typed() {
        let fp = "SHA256:uKXNjJHxLbZ8q2bY2Zq8lOqk0mI0bG8r9pQz1w7Xy4c";
        let want = normalise_fingerprint(fp).unwrap();
        assert_eq!(want, "ukxnjjhxlbz8q2by2zq8loqk0mi0bg8r9pqz1w7xy4c");
        for typed in [
            "uKXN jJHx LbZ8 q2bY 2Zq8 lOqk 0mI0 bG8r 9pQz 1w7X y4c",
            "  sha256:UKXN JJHX lbz8 Q2BY  2zq8 loqk 0mi0 bg8r\t9pqz 1w7x y4c\n",
            "SHA256: uKXNjJHxLbZ8q2bY2Zq8lOqk0mI0bG8r9pQz1w7Xy4c",
        ] {
            assert_eq!(
                normalise_fingerprint(typed).as_deref(),
                Some(want.as_str()),
                "{typed}"
            );
        }
        for bad in [
            "",
            "SHA256:",
            "uKXN jJHx",
            "MD5:12:34",
            "uKXNjJHxLbZ8q2bY2Zq8lOqk0mI0bG8r9pQz1w7Xy4cX",
            "uKXNjJHxLbZ8q2bY2Zq8lOqk0mI0bG8r9pQz1w7Xy4!",
        ] {
            assert_eq!(normalise_fingerprint(bad), None, "{bad}");
        }
    }

    /// A picture made of nothing but finder patterns (7×7 modules of 3 px, 30 px apart), the
    /// worst case for the detector's grouping of finder patterns into codes: the search gives
    /// up at its deadline and grace (3 s + 3 s here), with an error, and the call returns then.
    #[test]
    fn a_picture_of_finder_patterns_is_given_up_in_time() {
        let (w, h) = (1500u32, 1500u32);
        let img = GrayImage::from_fn(w, h, |x, y| {
            let (mx, my) = ((x % 30) / 3, (y % 30) / 3);
            let dark = mx < 7 && my < 7 && {
                let ring = mx == 0 || mx == 6 || my == 0 || my == 6;
                let stone = (2..=4).contains(&mx) && (2..=4).contains(&my);
                ring || stone
            };
            image::Luma([if dark { 0 } else { 255 }])
        });
        let started = Instant::now();
        let result = find_codes_within(img, Duration::from_secs(3));
        let took = started.elapsed();
        eprintln!("finder patterns: {took:?}: {result:?}");
        assert!(took < Duration::from_secs(7), "{took:?}");
        let err = result.unwrap_err().to_string();
        assert!(
            err.contains("gave up looking for QR codes after 6 s"),
            "{err}"
        );
    }

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG+V/GrTCEpmVtwcSFaoy8rFfAdppFU8knbeB/OBUXIi";
    const P256: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPg1Q+KGCuYkBhj62eL5GTpL+Nz3uo3gA6grASzJ/8BuUX+8Lzh/y3w03WgmRPUQ7/PgOKfUhmp3NoHNj0geaAw=";

    fn code(payload: &[u8], x: f64, y: f64, side: f64) -> Code {
        Code {
            payload: payload.to_vec(),
            corners: [
                Point { x, y },
                Point { x: x + side, y },
                Point {
                    x: x + side,
                    y: y + side,
                },
                Point { x, y: y + side },
            ],
        }
    }

    fn keys_of(payloads: &[&[u8]]) -> Result<Keys> {
        let codes: Vec<Code> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| code(p, 0.0, 100.0 * i as f64, 50.0))
            .collect();
        ca_keys(&codes, &[], &|n| format!("QR code {n} in x.png"))
    }

    #[test]
    fn payloads_that_are_ca_keys() {
        let got = keys_of(&[
            format!("{P256} breakglass-ca").as_bytes(),
            format!("  {ED} vault-b \n").as_bytes(),
        ])
        .unwrap();
        let lines: Vec<&str> = got.keys.iter().map(|k| k.line.as_str()).collect();
        assert_eq!(
            lines,
            [format!("{P256} breakglass-ca"), format!("{ED} vault-b")]
        );
        assert_eq!(got.keys[1].code, 2);
        assert_eq!(got.keys[0].algorithm(), "ecdsa-p256");
        assert!(got.comments.is_empty() && got.repeats.is_empty());

        // A bundle (pubkey --format png --bundle): several lines, a revoked CA's comment line.
        let bundle = format!("{P256} breakglass-ca\n{ED} vault-b\n# REVOKED, do not trust: SHA256:abc (ed25519, backup CA)");
        let got = keys_of(&[bundle.as_bytes()]).unwrap();
        assert_eq!(got.keys.len(), 2);
        assert!(got.keys.iter().all(|k| k.code == 1));
        assert_eq!(got.comments.len(), 1);
        assert!(got.comments[0].1.contains("REVOKED"), "{:?}", got.comments);

        // The same key twice (two codes, or a bundle and a code): listed once.
        let got = keys_of(&[P256.as_bytes(), format!("{P256} other").as_bytes()]).unwrap();
        assert_eq!(got.keys.len(), 1);
        assert_eq!(got.repeats, [(2, got.keys[0].fingerprint())]);
        let known = [got.keys[0].key.clone()];
        let codes = [code(P256.as_bytes(), 0.0, 0.0, 10.0)];
        let again = ca_keys(&codes, &known, &|n| format!("code {n}")).unwrap();
        assert!(again.keys.is_empty() && again.repeats.len() == 1);

        // A comment that is not plain text is left out of the line, and kept to be named.
        let got = keys_of(&[format!("{ED} evil\u{1b}[2J\u{202e}x").as_bytes()]).unwrap();
        assert_eq!(got.keys[0].line, ED);
        assert_eq!(
            got.keys[0].dropped_comment.as_deref(),
            Some("evil\u{1b}[2J\u{202e}x")
        );
        // No comment at all is fine.
        assert_eq!(keys_of(&[ED.as_bytes()]).unwrap().keys[0].line, ED);
    }

    #[test]
    fn payloads_that_are_not_ca_keys_are_refused() {
        let p521 = "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAGLt9M4EaCnBLU0lT5Y9BhQHKM/xMWdQI5BWKNbVkwxaT1zwwUNVsM3C2YDB+TYnrvbCF+gnTBzfy1+9EqpPpPsiQGmdMcMcODijBSCN8zVAEBBKk6Ufr8WIr0tvzodsFvi2jmJdDuE2YQmlqupZ6ATjHrINFrhZNf7AoHFtlA0ZcS2tg==";
        let compressed = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAAAhAvg1Q+KGCuYkBhj62eL5GTpL+Nz3uo3gA6grASzJ/8Bu";
        let cert = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIA== alice";
        let two_and_garbage = format!("{P256}\ngarbage");
        for (payload, kind, why) in [
            (&b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----\n"[..], Some(crate::error::Kind::Refused), "holds a PRIVATE key"),
            (b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----", Some(crate::error::Kind::Refused), "PRIVATE"),
            (cert.as_bytes(), Some(crate::error::Kind::Refused), "holds an OpenSSH certificate (ssh-ed25519-cert-v01@openssh.com)"),
            (b"https://example.org/not-a-key", Some(crate::error::Kind::Invalid), "not an OpenSSH public key line"),
            (b"ssh-ed25519 AAAA!!!! x", Some(crate::error::Kind::Invalid), "not an OpenSSH public key line"),
            (b"", Some(crate::error::Kind::Invalid), "holds no OpenSSH public key line"),
            (b"# only a comment\n\n", Some(crate::error::Kind::Invalid), "holds no OpenSSH public key line"),
            (b"\xff\xfe\x00binary", Some(crate::error::Kind::Invalid), "9 bytes of binary data"),
            (p521.as_bytes(), Some(crate::error::Kind::Refused), "ecdsa-sha2-nistp521 key, which cannot be a breakglass CA key"),
            (compressed.as_bytes(), Some(crate::error::Kind::Refused), "sshd cannot read"),
            (two_and_garbage.as_bytes(), Some(crate::error::Kind::Invalid), "QR code 1 in x.png, line 2 holds text that is not"),
        ] {
            let err = keys_of(&[payload]).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(why), "{payload:?}: {text}");
            assert!(text.contains("QR code 1 in x.png"), "{text}");
            assert_eq!(err.kind(), kind, "{text}");
            assert_eq!(err.exit_code(), 1, "{text}");
            assert!(err.hint().is_some(), "{text}");
        }
        // A private key never shows in the message.
        let err = keys_of(&[
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nSECRETSECRET\n-----END OPENSSH PRIVATE KEY-----",
        ])
        .unwrap_err();
        assert!(!err.to_string().contains("SECRETSECRET"));
        // The second code is refused by number, after a good first one.
        let err = keys_of(&[P256.as_bytes(), b"garbage"]).unwrap_err();
        assert!(
            err.to_string().starts_with("QR code 2 in x.png holds"),
            "{err}"
        );
        // Hostile text is escaped and cut.
        let err =
            keys_of(&["\u{1b}[2J\u{1b}[1;1Hfake: ok\u{202e}".repeat(20).as_bytes()]).unwrap_err();
        let text = err.to_string();
        assert!(text::is_safe(&text), "{text:?}");
        assert!(text.contains("\\e[2J\\e[1;1Hfake: ok\\u{202e}"), "{text}");
        assert!(text.ends_with("'..."), "{text}");
    }

    /// Codes laid out as on a sheet (the primary on the left above, backups in rows on the
    /// right below), seen straight, turned a little, sideways and upside down: always the same
    /// order.
    #[test]
    fn sheet_order_is_the_pages_reading_order() {
        let page = [
            code(b"primary", 15.0, 60.0, 80.0),
            code(b"b1", 90.0, 200.0, 34.0),
            code(b"b2", 132.0, 200.0, 40.0),
            code(b"b3", 180.0, 200.0, 20.0),
            code(b"b4", 150.0, 250.0, 34.0),
        ];
        let order = |codes: Vec<Code>| -> Vec<String> {
            sheet_order(codes)
                .iter()
                .map(|c| String::from_utf8_lossy(&c.payload).into_owned())
                .collect()
        };
        let want = ["primary", "b1", "b2", "b3", "b4"];
        for degrees in [0.0f64, 3.0, -4.0, 90.0, 180.0, 270.0, 177.0] {
            let (s, c) = degrees.to_radians().sin_cos();
            let turn = |p: Point| Point {
                x: p.x * c - p.y * s + 1000.0,
                y: p.x * s + p.y * c + 1000.0,
            };
            let mut codes: Vec<Code> = page
                .iter()
                .map(|k| Code {
                    payload: k.payload.clone(),
                    corners: k.corners.map(turn),
                })
                .collect();
            codes.reverse();
            assert_eq!(order(codes), want, "turned {degrees}°");
        }
        assert!(sheet_order(Vec::new()).is_empty());
    }

    /// CRC-32 of PNG chunks (ISO 3309), bit by bit.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&[&kind[..], data].concat());
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// A PNG signature and header of `w`×`h` (`depth`-bit, colour type `colour`), then the
    /// start of an image data chunk that is cut off: what a picture of any size costs to send.
    pub(crate) fn png_header_only(w: u32, h: u32, depth: u8, colour: u8) -> Vec<u8> {
        let mut ihdr = w.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[depth, colour, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(chunk(b"IHDR", &ihdr));
        // An IDAT announcing 64 KiB, of which 10 bytes follow.
        png.extend_from_slice(&65536u32.to_be_bytes());
        png.extend_from_slice(b"IDAT\x78\x9c\x00\x00\x00\xff\xff\x00\x00\x00");
        png
    }

    /// A small JPEG whose frame header says `w`×`h`: the headers read, the scan is far too
    /// short for the size.
    fn jpeg_header_only(w: u16, h: u16) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
            .encode_image(&GrayImage::from_pixel(8, 8, image::Luma([200])))
            .unwrap();
        let sof = out.windows(2).position(|m| m == [0xff, 0xc0]).unwrap();
        out[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
        out[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
        out
    }

    fn qr_png(text: &str) -> Vec<u8> {
        crate::export::qr::Qr::for_print(text, "x")
            .unwrap()
            .png()
            .unwrap()
    }

    /// Two codes side by side on a page: rxing reads the one rqrr's passes left (the one found
    /// is painted over first), and nothing twice.
    #[test]
    fn rxing_reads_the_code_left() {
        let left = image::load_from_memory(&qr_png(ED)).unwrap().to_luma8();
        let right = image::load_from_memory(&qr_png(P256)).unwrap().to_luma8();
        let mut page = GrayImage::from_pixel(
            left.width() + right.width() + 200,
            left.height().max(right.height()) + 100,
            image::Luma([255]),
        );
        image::imageops::replace(&mut page, &left, 50, 50);
        image::imageops::replace(&mut page, &right, i64::from(left.width()) + 150, 50);
        let deadline = Instant::now() + Duration::from_secs(60);
        let (side, x) = (f64::from(left.width()), 50.0);
        let found = vec![code(ED.as_bytes(), x, 50.0, side)];
        let new = zxing(&page, &found, deadline);
        assert_eq!(new.len(), 1, "{new:?}");
        assert_eq!(new[0].payload, P256.as_bytes());
        assert!(new[0].corners[0].x > side + 150.0, "{:?}", new[0].corners);
        // Both, when neither was found; none after the deadline.
        let both = zxing(&page, &[], deadline);
        let mut payloads: Vec<&[u8]> = both.iter().map(|c| &c.payload[..]).collect();
        payloads.sort();
        assert_eq!(payloads, [P256.as_bytes(), ED.as_bytes()]);
        assert!(zxing(&page, &[], Instant::now()).is_empty());
    }

    /// A picture of nothing but finder patterns costs rxing's reader time, not memory: it
    /// reads nothing and returns (its multi-code reader took gigabytes on this).
    #[test]
    fn rxing_on_finder_patterns_reads_nothing() {
        let img = GrayImage::from_fn(1500, 1500, |x, y| {
            let (mx, my) = ((x % 30) / 3, (y % 30) / 3);
            let ring = mx == 0 || mx == 6 || my == 0 || my == 6;
            let stone = (2..=4).contains(&mx) && (2..=4).contains(&my);
            image::Luma([if mx < 7 && my < 7 && (ring || stone) {
                0
            } else {
                255
            }])
        });
        assert!(zxing(&img, &[], Instant::now() + Duration::from_secs(60)).is_empty());
    }

    #[test]
    fn formats_are_told_by_their_bytes() {
        assert_eq!(format_of(&qr_png("x")).unwrap(), Format::Png);
        assert_eq!(format_of(&jpeg_header_only(8, 8)).unwrap(), Format::Jpeg);
        for (bytes, what) in [
            (&b""[..], "empty"),
            (b"GIF89a\x01\x00", "a GIF image"),
            (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "a WebP image"),
            (b"\x00\x00\x00\x18ftypheic\x00\x00", "HEIC"),
            (b"%PDF-1.7\n", "a PDF document"),
            (b"<?xml version=\"1.0\"?><svg", "an SVG document"),
            (b"BM\x36\x00", "a BMP image"),
            (b"II*\x00\x08", "a TIFF image"),
            (format!("{ED} x\n").as_bytes(), "an OpenSSH key file"),
            (b"\x1b[2Jhello", "not a PNG or JPEG image"),
        ] {
            let err = decode(bytes).err().unwrap();
            let text = err.to_string();
            assert!(text.contains(what), "{bytes:?}: {text}");
            assert_eq!(err.exit_code(), 1);
            assert!(err.hint().is_some());
        }
    }

    /// Pictures too large, refused from their header alone, at once: 100 megapixels of PNG
    /// with only a few bytes of data, a JPEG frame of 65535×65535, a 16-bit RGBA PNG under the
    /// pixel limit whose pixels would need more memory than the decoder may take.
    #[test]
    fn huge_pictures_are_refused_from_their_header() {
        for (bytes, why) in [
            (
                png_header_only(10_000, 10_000, 1, 0),
                "10000×10000 pixels (100.0 megapixels); import-qr reads at most 50 megapixels",
            ),
            (png_header_only(u32::MAX >> 1, 2, 8, 0), "more than 256 MiB"),
            (jpeg_header_only(65535, 65535), "65535×65535 pixels"),
            (
                png_header_only(6000, 6000, 16, 6),
                "6000×6000 pixels of Rgba16: decoding it would need 274 MiB, more than the 256 MiB",
            ),
        ] {
            let started = Instant::now();
            let err = decode(&bytes).err().unwrap();
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{:?}",
                started.elapsed()
            );
            let text = err.to_string();
            assert!(text.contains(why), "{text}");
            assert_eq!(err.exit_code(), 1, "{text}");
        }
        assert!(check_dimensions(7071, 7071).is_ok());
        assert!(check_dimensions(7072, 7072).is_err());
        assert!(check_dimensions(0, 10)
            .unwrap_err()
            .to_string()
            .contains("empty"));
    }

    #[test]
    fn damaged_pictures_are_clear_errors() {
        let png = qr_png(ED);
        let mut bad_crc = png.clone();
        bad_crc[29] ^= 0xff; // inside the IHDR's CRC
        let jpeg = {
            let img = decode(&png).unwrap().grey;
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
                .encode_image(&img)
                .unwrap();
            out
        };
        for (bytes, name) in [
            (png[..png.len() / 2].to_vec(), "PNG"),
            (png[..40].to_vec(), "PNG"),
            (bad_crc, "PNG"),
            (jpeg[..jpeg.len() / 2].to_vec(), "JPEG"),
            (jpeg[..20].to_vec(), "JPEG"),
        ] {
            match decode(&bytes) {
                Err(err) => {
                    let text = err.to_string();
                    assert!(
                        text.starts_with(&format!("cannot read the {name} image: ")),
                        "{text}"
                    );
                    assert!(text::is_safe(&text), "{text:?}");
                    assert_eq!(err.exit_code(), 1);
                }
                // A JPEG cut in its scan decodes to a partial picture (grey below the cut):
                // then its code cannot be read, which find_codes reports.
                Ok(picture) => {
                    assert_eq!(name, "JPEG");
                    let scan = find_codes(picture.grey).unwrap();
                    assert!(scan.codes.iter().all(|c| c.payload == ED.as_bytes()));
                }
            }
        }
        // The whole files read.
        let scan = find_codes(decode(&png).unwrap().grey).unwrap();
        assert_eq!(scan.codes.len(), 1);
        let scan = find_codes(decode(&jpeg).unwrap().grey).unwrap();
        assert_eq!(scan.codes.len(), 1);
    }

    /// A screenshot with a transparent background: the transparent pixels are paper, not ink.
    #[test]
    fn transparent_pixels_are_white() {
        let grey = decode(&qr_png(ED)).unwrap().grey;
        let (w, h) = grey.dimensions();
        let rgba = image::RgbaImage::from_fn(w, h, |x, y| {
            if grey.get_pixel(x, y).0[0] < 128 {
                image::Rgba([0, 0, 0, 255])
            } else {
                image::Rgba([0, 0, 0, 0])
            }
        });
        let mut png = Vec::new();
        image::DynamicImage::ImageRgba8(rgba)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let picture = decode(&png).unwrap();
        assert_eq!(picture.grey.get_pixel(0, 0).0[0], 255);
        let scan = find_codes(picture.grey).unwrap();
        assert_eq!(scan.codes.len(), 1);
        assert_eq!(scan.codes[0].payload, ED.as_bytes());
    }

    /// A picture without any code: nothing found, nothing unreadable, every pass run (the
    /// border pass, every variant, rxing).
    #[test]
    fn a_picture_without_a_code() {
        let img = GrayImage::from_fn(400, 300, |x, y| {
            image::Luma([((x * 7 + y * 3) % 256) as u8])
        });
        let scan = find_codes(img).unwrap();
        assert!(scan.codes.is_empty());
        assert_eq!(scan.unreadable, 0);
        assert!(!scan.incomplete);
        assert_eq!(scan.passes.len(), Variant::ALL.len() + 2);
        assert_eq!(scan.passes.last().map(|p| p.name), Some("rxing"));
    }

    #[test]
    fn enlarging_is_bilinear() {
        let img = GrayImage::from_raw(2, 1, vec![0, 200]).unwrap();
        assert_eq!(
            enlarge(&img, 2).as_raw(),
            &[0, 50, 150, 200, 0, 50, 150, 200]
        );
        let e = enlarge(&img, 3);
        assert_eq!(e.dimensions(), (6, 3));
        assert_eq!(&e.as_raw()[..6], &[0, 0, 67, 133, 200, 200]);
        let img = GrayImage::from_raw(4, 2, vec![10, 20, 30, 40, 50, 60, 70, 80]).unwrap();
        assert_eq!(shrink(&img, 2).as_raw(), &[35, 55]);
        assert_eq!(
            box3(&GrayImage::from_pixel(5, 5, image::Luma([77]))).as_raw(),
            &[77; 25]
        );
        let (p, pad) = padded(&GrayImage::from_pixel(100, 50, image::Luma([200])));
        assert_eq!((p.dimensions(), pad), ((132, 82), 16));
        assert!(p.as_raw().iter().all(|&v| v == 200));
    }

    /// The sheet's layouts, read back from the rendered page: the primary first, then the
    /// backups in the bundle's order, whether each backup has a row of its own (one or two,
    /// or large ones) or they share a row (three or four small ones, the grid, right-aligned:
    /// backup 1 leftmost). (The grid is filled from its last backup, right to left, and would
    /// read out of order if it took two rows; no set of backups that fits the page makes it.)
    #[test]
    fn the_sheet_reads_in_the_bundles_order() {
        use crate::export::sheet::{self, tests::sample};
        for (primary, backups) in [
            (95, vec![95; 4]),
            (180, vec![180, 95, 180]),
            (740, vec![740]),
        ] {
            let mut sheet = sample(primary, &backups);
            for (i, b) in sheet.backups.iter_mut().enumerate() {
                b.line = format!("{}{i}", &b.line[..b.line.len() - 1]);
            }
            let svg = sheet::render(&sheet).unwrap();
            check_order(&sheet, &svg);
        }
    }

    fn check_order(sheet: &crate::export::sheet::Sheet, svg: &str) {
        use crate::export::sheet::tests::rasterise;
        let (w, h, luma) = rasterise(svg, (5.0 / crate::export::qr::MIN_MODULE_MM) as f32, false);
        let grey = GrayImage::from_raw(w as u32, h as u32, luma).unwrap();
        let scan = find_codes(grey).unwrap();
        let got: Vec<String> = scan
            .codes
            .iter()
            .map(|c| String::from_utf8(c.payload.clone()).unwrap())
            .collect();
        let want: Vec<String> = std::iter::once(&sheet.primary)
            .chain(&sheet.backups)
            .map(|c| c.line.clone())
            .collect();
        assert_eq!(got, want);
    }
}
