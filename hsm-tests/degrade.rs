//! Pictures degraded the way a scan or a phone photo degrades a printed page, for the
//! `import-qr` tests: rendered from SVG (resvg), then rotated, scaled down, blurred, speckled
//! with noise and JPEG-compressed, alone and together. Everything is deterministic (fixed
//! seeds), so a failure reproduces.

use std::sync::{Arc, OnceLock};

use image::{GrayImage, Luma};
use resvg::{tiny_skia, usvg};

use crate::common::SplitMix;

/// The system fonts (DejaVu for the generic families), loaded once.
fn fonts() -> Arc<usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut db = usvg::fontdb::Database::new();
            db.load_system_fonts();
            db.set_sans_serif_family("DejaVu Sans");
            db.set_monospace_family("DejaVu Sans Mono");
            Arc::new(db)
        })
        .clone()
}

/// Render an SVG (sized in mm) at `dpi`, as greyscale on white, its text in the system's
/// fonts (text is what a real sheet has around its codes).
pub fn render(svg: &str, dpi: f32) -> GrayImage {
    let opt = usvg::Options {
        fontdb: fonts(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &opt).unwrap();
    // usvg turns mm into px at 96 dpi.
    let scale = dpi / 96.0;
    let w = (tree.size().width() * scale).ceil() as u32;
    let h = (tree.size().height() * scale).ceil() as u32;
    let mut pixmap = tiny_skia::Pixmap::new(w, h).unwrap();
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    let luma = pixmap
        .pixels()
        .iter()
        .map(|p| ((p.red() as u32 * 3 + p.green() as u32 * 6 + p.blue() as u32) / 10) as u8)
        .collect();
    GrayImage::from_raw(w, h, luma).unwrap()
}

/// Turned by `degrees` (clockwise) about the centre, bilinear, on a canvas large enough for
/// all of it; the new corners are white paper.
pub fn rotate(img: &GrayImage, degrees: f64) -> GrayImage {
    let (w, h) = (img.width() as f64, img.height() as f64);
    let (s, c) = degrees.to_radians().sin_cos();
    let nw = (w * c.abs() + h * s.abs()).ceil();
    let nh = (w * s.abs() + h * c.abs()).ceil();
    let (cx, cy, ncx, ncy) = (w / 2.0, h / 2.0, nw / 2.0, nh / 2.0);
    let at = |x: i64, y: i64| -> f64 {
        if x < 0 || y < 0 || x >= img.width() as i64 || y >= img.height() as i64 {
            255.0
        } else {
            img.get_pixel(x as u32, y as u32).0[0] as f64
        }
    };
    GrayImage::from_fn(nw as u32, nh as u32, |x, y| {
        // Where this output pixel's centre comes from in the input.
        let (dx, dy) = (x as f64 + 0.5 - ncx, y as f64 + 0.5 - ncy);
        let sx = dx * c + dy * s + cx - 0.5;
        let sy = -dx * s + dy * c + cy - 0.5;
        let (x0, y0) = (sx.floor(), sy.floor());
        let (tx, ty) = (sx - x0, sy - y0);
        let (x0, y0) = (x0 as i64, y0 as i64);
        let v = (at(x0, y0) * (1.0 - tx) + at(x0 + 1, y0) * tx) * (1.0 - ty)
            + (at(x0, y0 + 1) * (1.0 - tx) + at(x0 + 1, y0 + 1) * tx) * ty;
        Luma([v.round().clamp(0.0, 255.0) as u8])
    })
}

/// Scaled down by `factor` (< 1, e.g. 100/300 for a page scanned at 100 dpi instead of 300):
/// each output pixel is the mean of the input area it covers, as a scanner's sensor cell
/// sees it.
pub fn scale(img: &GrayImage, factor: f64) -> GrayImage {
    assert!(factor > 0.0 && factor <= 1.0);
    let (w, h) = (img.width() as usize, img.height() as usize);
    let nw = ((w as f64 * factor).round() as usize).max(1);
    let nh = ((h as f64 * factor).round() as usize).max(1);
    // For each output index: the input indices it covers and their weights (summing to 1).
    let taps = |n_in: usize, n_out: usize| -> Vec<Vec<(usize, f64)>> {
        let step = n_in as f64 / n_out as f64;
        (0..n_out)
            .map(|o| {
                let (a, b) = (o as f64 * step, (o as f64 + 1.0) * step);
                let mut t = Vec::new();
                let mut i = a.floor() as usize;
                while (i as f64) < b && i < n_in {
                    let cover = (b.min(i as f64 + 1.0) - a.max(i as f64)) / step;
                    if cover > 0.0 {
                        t.push((i, cover));
                    }
                    i += 1;
                }
                t
            })
            .collect()
    };
    let (tx, ty) = (taps(w, nw), taps(h, nh));
    let px = img.as_raw();
    let mut across = vec![0f64; nw * h];
    for y in 0..h {
        let row = &px[y * w..(y + 1) * w];
        for (ox, t) in tx.iter().enumerate() {
            across[y * nw + ox] = t.iter().map(|&(i, c)| row[i] as f64 * c).sum();
        }
    }
    let mut out = vec![0u8; nw * nh];
    for (oy, t) in ty.iter().enumerate() {
        for ox in 0..nw {
            let v: f64 = t.iter().map(|&(i, c)| across[i * nw + ox] * c).sum();
            out[oy * nw + ox] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    GrayImage::from_raw(nw as u32, nh as u32, out).unwrap()
}

/// A blur close to a Gaussian of `sigma` pixels (a photocopier's or an out-of-focus camera's
/// spread): three box blurs of the widths that approximate it (Kovesi 2010).
pub fn blur(img: &GrayImage, sigma: f64) -> GrayImage {
    let n = 3.0;
    let ideal = (12.0 * sigma * sigma / n + 1.0).sqrt();
    let mut wl = ideal.floor() as usize;
    if wl.is_multiple_of(2) {
        wl -= 1;
    }
    let wu = wl + 2;
    let m = ((12.0 * sigma * sigma - n * (wl * wl) as f64 - 4.0 * n * wl as f64 - 3.0 * n)
        / (-4.0 * wl as f64 - 4.0))
        .round() as usize;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut data: Vec<u32> = img.as_raw().iter().map(|&v| v as u32).collect();
    for pass in 0..3 {
        let r = if pass < m { (wl - 1) / 2 } else { (wu - 1) / 2 };
        data = box_pass(&data, w, h, r, true);
        data = box_pass(&data, w, h, r, false);
    }
    GrayImage::from_raw(
        w as u32,
        h as u32,
        data.into_iter().map(|v| v.min(255) as u8).collect(),
    )
    .unwrap()
}

/// One box blur of radius `r` along rows (`across`) or columns, edges repeated, running sums.
fn box_pass(data: &[u32], w: usize, h: usize, r: usize, across: bool) -> Vec<u32> {
    let (len, lines) = if across { (w, h) } else { (h, w) };
    let at = |line: usize, i: usize| -> u32 {
        if across {
            data[line * w + i]
        } else {
            data[i * w + line]
        }
    };
    let mut out = vec![0u32; w * h];
    let n = (2 * r + 1) as u32;
    for line in 0..lines {
        let clamp = |i: isize| i.clamp(0, len as isize - 1) as usize;
        let mut sum: u32 = (-(r as isize)..=r as isize)
            .map(|i| at(line, clamp(i)))
            .sum();
        for i in 0..len {
            let v = (sum + n / 2) / n;
            if across {
                out[line * w + i] = v;
            } else {
                out[i * w + line] = v;
            }
            sum += at(line, clamp(i as isize + r as isize + 1));
            sum -= at(line, clamp(i as isize - r as isize));
        }
    }
    out
}

/// Gaussian noise of standard deviation `sigma` (0-255 scale), from a fixed `seed`.
pub fn noise(img: &GrayImage, sigma: f64, seed: u64) -> GrayImage {
    let mut rng = SplitMix(seed);
    let mut out = img.clone();
    for p in out.pixels_mut() {
        // Box-Muller.
        let (u1, u2) = (rng.unit().max(1e-12), rng.unit());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        p.0[0] = (p.0[0] as f64 + z * sigma).round().clamp(0.0, 255.0) as u8;
    }
    out
}

/// Compressed as a JPEG file of `quality` (1-100).
pub fn jpeg(img: &GrayImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    enc.encode_image(img).unwrap();
    out
}

/// A PNG file of the picture.
pub fn png(img: &GrayImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::L8,
        )
        .unwrap();
    out
}

use image::ImageEncoder as _;

/// One way of degrading a picture rendered at [`SCAN_DPI`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Degradation {
    /// As rendered, saved as PNG.
    Clean,
    /// Turned 3 degrees.
    Rotated,
    /// Scanned at 100 dpi.
    Dpi100,
    /// Blurred, σ = 1.5 px at 300 dpi (0.13 mm).
    Blurred,
    /// JPEG at quality 50.
    Jpeg50,
    /// Gaussian noise, σ = 20.
    Noisy,
    /// A poor scan: turned 3°, blurred, noisy, JPEG 50.
    Scan,
    /// Everything at once: turned 3°, blurred, scanned at 100 dpi, noisy, JPEG 50.
    All,
}

/// The resolution pictures are rendered at before they are degraded (a common scan).
pub const SCAN_DPI: f32 = 300.0;

impl Degradation {
    pub const ALL: [Degradation; 8] = [
        Degradation::Clean,
        Degradation::Rotated,
        Degradation::Dpi100,
        Degradation::Blurred,
        Degradation::Jpeg50,
        Degradation::Noisy,
        Degradation::Scan,
        Degradation::All,
    ];

    /// A combination of several degradations (the rest are the list, one each).
    pub fn combined(self) -> bool {
        matches!(self, Degradation::Scan | Degradation::All)
    }

    pub fn name(self) -> &'static str {
        match self {
            Degradation::Clean => "clean",
            Degradation::Rotated => "rotated 3°",
            Degradation::Dpi100 => "100 dpi",
            Degradation::Blurred => "blurred",
            Degradation::Jpeg50 => "JPEG q50",
            Degradation::Noisy => "noise σ20",
            Degradation::Scan => "rot+blur+noise+JPEG",
            Degradation::All => "all five",
        }
    }

    /// A file name part.
    pub fn slug(self) -> &'static str {
        match self {
            Degradation::Clean => "clean",
            Degradation::Rotated => "rotated",
            Degradation::Dpi100 => "dpi100",
            Degradation::Blurred => "blurred",
            Degradation::Jpeg50 => "jpeg50",
            Degradation::Noisy => "noisy",
            Degradation::Scan => "scan",
            Degradation::All => "all",
        }
    }
}

/// Every [`Degradation`] of `img` (rendered at `dpi`), as files: PNG, or JPEG for the
/// degradations that include it, with their extensions. The steps they share are done once.
pub fn degrade_all(
    img: &GrayImage,
    dpi: f32,
    seed: u64,
) -> Vec<(Degradation, Vec<u8>, &'static str)> {
    let to_100 = 100.0 / dpi as f64;
    // The blur is 0.13 mm whatever the resolution.
    let sigma = 1.5 * dpi as f64 / SCAN_DPI as f64;
    let rotated = rotate(img, 3.0);
    let rotated_blurred = blur(&rotated, sigma);
    Degradation::ALL
        .iter()
        .map(|&d| {
            let (bytes, ext) = match d {
                Degradation::Clean => (png(img), "png"),
                Degradation::Rotated => (png(&rotated), "png"),
                Degradation::Dpi100 => (png(&scale(img, to_100)), "png"),
                Degradation::Blurred => (png(&blur(img, sigma)), "png"),
                Degradation::Jpeg50 => (jpeg(img, 50), "jpg"),
                Degradation::Noisy => (png(&noise(img, 20.0, seed)), "png"),
                Degradation::Scan => (jpeg(&noise(&rotated_blurred, 20.0, seed), 50), "jpg"),
                Degradation::All => {
                    let small = scale(&rotated_blurred, to_100);
                    (jpeg(&noise(&small, 20.0, seed), 50), "jpg")
                }
            };
            (d, bytes, ext)
        })
        .collect()
}
