//! QR codes and the key sheet decode back to the exact CA lines (rqrr on rendered images).
//!
//! For each CA algorithm made on SoftHSM2: the terminal QR, the PNG (decoded with the `png`
//! crate), the SVG and the A4 sheet (rendered with resvg) all decode to exactly the `pubkey`
//! line, and the sheet's fingerprint is `ssh-keygen -l`'s. Then `--bundle` and backup CAs.
//! No command here gets a PIN.

use std::path::Path;
use std::process::{Command, Output};

use breakglass_ca::config::Config;
use resvg::{tiny_skia, usvg};

use crate::common::*;

fn tools() -> bool {
    require(&["softhsm2-util", "ssh-keygen", MODULE])
}

/// `breakglass-ca pubkey ARGS` without any PIN source.
fn pubkey(hsm: &Hsm, args: &[&str]) -> Output {
    let mut c = hsm.cmd();
    c.env_remove("BREAKGLASS_CA_PIN_FILE")
        .arg("pubkey")
        .args(args);
    run(&mut c)
}

fn pubkey_ok(hsm: &Hsm, args: &[&str]) -> Output {
    let out = pubkey(hsm, args);
    assert_ok(&out, &format!("pubkey {}", args.join(" ")));
    out
}

/// Every QR code rqrr finds in a greyscale image, with its error-correction level
/// (rqrr's numbering: 0 M, 1 L, 2 H, 3 Q).
fn decode(w: usize, h: usize, luma: &[u8]) -> Vec<(u16, String)> {
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| luma[y * w + x]);
    img.detect_grids()
        .into_iter()
        .filter_map(|g| g.decode().ok().map(|(meta, s)| (meta.ecc_level, s)))
        .collect()
}

const ECC_Q: u16 = 3;

/// A PNG file as 8-bit greyscale.
fn png_luma(path: &Path) -> (usize, usize, Vec<u8>) {
    let file = std::fs::File::open(path).unwrap();
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (frame.width as usize, frame.height as usize);
    let channels = frame.color_type.samples();
    let luma = buf[..frame.buffer_size()]
        .chunks(channels)
        .map(|px| px[0])
        .collect();
    (w, h, luma)
}

/// Render an SVG (sized in mm) at `px_per_mm`, as greyscale. `fonts`: load the system fonts
/// (only needed to look at the text).
fn render_svg(svg: &str, px_per_mm: f32, fonts: bool) -> (usize, usize, Vec<u8>) {
    let mut opt = usvg::Options::default();
    if fonts {
        let db = opt.fontdb_mut();
        db.load_system_fonts();
        db.set_sans_serif_family("DejaVu Sans");
        db.set_monospace_family("DejaVu Sans Mono");
    }
    let tree = usvg::Tree::from_str(svg, &opt).unwrap();
    // usvg turns mm into px at 96 dpi.
    let scale = px_per_mm / (96.0 / 25.4);
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
    (w as usize, h as usize, luma)
}

/// The payloads of the QR codes on `svg` rendered at `px_per_mm` (without fonts), found the way
/// `import-qr` finds them, sorted.
fn codes_on_page(svg: &str, px_per_mm: f32) -> Vec<String> {
    let (w, h, luma) = render_svg(svg, px_per_mm, false);
    let grey = image::GrayImage::from_raw(w as u32, h as u32, luma).unwrap();
    let mut found: Vec<String> = breakglass_ca::qrscan::find_codes(grey)
        .unwrap()
        .codes
        .into_iter()
        .map(|c| String::from_utf8(c.payload).unwrap())
        .collect();
    found.sort();
    found
}

fn write_png(path: &Path, w: usize, h: usize, luma: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(file, w as u32, h as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(luma).unwrap();
}

/// The content of the `<text id="ID">` element of an SVG.
fn svg_text(svg: &str, id: &str) -> String {
    let start = svg
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element {id}"));
    let rest = &svg[start..];
    let open = rest.find('>').unwrap() + 1;
    let close = rest.find("</text>").unwrap();
    rest[open..close].to_string()
}

/// A numeric attribute of the first element that has `id`.
fn svg_attr_of(svg: &str, id: &str, attr: &str) -> String {
    let start = svg.find(&format!("id=\"{id}\"")).unwrap();
    let rest = &svg[start..];
    let at = rest.find(&format!("{attr}=\"")).unwrap() + attr.len() + 2;
    rest[at..at + rest[at..].find('"').unwrap()].to_string()
}

/// The module size (mm) of the QR group `id` on the sheet.
fn sheet_module_mm(svg: &str, id: &str) -> f32 {
    let transform = svg_attr_of(svg, id, "transform");
    let scale = transform.split("scale(").nth(1).unwrap();
    scale[..scale.find(')').unwrap()].parse().unwrap()
}

/// `SHA256:…` as `ssh-keygen -l -E sha256 -f FILE` prints it, one per key in the file.
fn ssh_keygen_fingerprints(file: &Path) -> Vec<String> {
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(file)
        .output()
        .unwrap();
    assert_ok(&out, "ssh-keygen -l");
    stdout(&out)
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
        .collect()
}

const ANSI_DARK_ON_LIGHT: &str = "\x1b[30;47m";
const ANSI_RESET: &str = "\x1b[0m";

/// Rebuild the modules from the text rendering (half blocks, a block for each dark module) and
/// decode. `colours`: every line must be black on white (ANSI), as on a terminal; else no line
/// may hold an escape sequence, as in a file or a pipe.
pub(crate) fn decode_terminal(text: &str, colours: bool) -> Vec<(u16, String)> {
    let mut grid: Vec<Vec<bool>> = Vec::new();
    for line in text.lines() {
        let body = if colours {
            line.strip_prefix(ANSI_DARK_ON_LIGHT)
                .and_then(|l| l.strip_suffix(ANSI_RESET))
                .unwrap_or_else(|| panic!("not black on white: {line:?}"))
        } else {
            assert!(!line.contains('\x1b'), "an escape sequence: {line:?}");
            line
        };
        let (top, bottom): (Vec<bool>, Vec<bool>) = body
            .chars()
            .map(|c| match c {
                ' ' => (false, false),
                '\u{2580}' => (true, false),
                '\u{2584}' => (false, true),
                '\u{2588}' => (true, true),
                other => panic!("unexpected {other:?} in the terminal QR code"),
            })
            .unzip();
        grid.push(top);
        grid.push(bottom);
    }
    let side = grid[0].len();
    assert!(grid.iter().all(|row| row.len() == side), "ragged lines");
    // The 4-module quiet zone: two text lines of light on top, four columns on each side.
    assert!(grid[..4].iter().flatten().all(|d| !d));
    assert!(grid.iter().all(|row| row[..4].iter().all(|d| !d)));
    assert!(grid.iter().all(|row| row[side - 4..].iter().all(|d| !d)));
    let px = 4;
    let (w, h) = (side * px, grid.len() * px);
    let luma: Vec<u8> = (0..w * h)
        .map(|i| if grid[i / w / px][i % w / px] { 0 } else { 255 })
        .collect();
    decode(w, h, &luma)
}

/// `breakglass-ca pubkey ARGS` on a pseudo-terminal (`script`), which is its stdout and
/// stderr: what the custodian's terminal receives, with `\r\n` made `\n`.
fn pubkey_on_terminal(hsm: &Hsm, args: &[&str]) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let mut line = quote(env!("CARGO_BIN_EXE_breakglass-ca"));
    line.push_str(" pubkey");
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    let mut c = hsm.cmd_with("script");
    c.env_remove("BREAKGLASS_CA_PIN_FILE")
        .env("TERM", "xterm")
        .args(["-qec", &line, "/dev/null"]);
    let out = run(&mut c);
    assert_ok(&out, &format!("script -qec {line}"));
    stdout(&out).replace("\r\n", "\n")
}

/// Every export of one CA algorithm decodes to exactly the `pubkey` line.
fn qr_round_trip(algorithm: &str) {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    let init_line = hsm.init(algorithm);
    let line = stdout(&pubkey_ok(&hsm, &[]));
    assert!(line.ends_with('\n') && !line.ends_with("\n\n"));
    let line = line.trim_end_matches('\n').to_string();
    assert_eq!(line, init_line);
    assert_eq!(line, line.trim(), "no stray whitespace in the line");
    eprintln!("{algorithm}: {} bytes", line.len());

    // The QR code in text: into a pipe (and a file), plain half blocks.
    let out = pubkey_ok(&hsm, &["--format", "qr"]);
    let decoded = decode_terminal(&stdout(&out), false);
    assert_eq!(decoded.len(), 1, "{algorithm}: QR code in text");
    assert_eq!(decoded[0].1, line, "{algorithm}: QR code in text");
    let text_file = hsm.path("qr.txt");
    pubkey_ok(&hsm, &["--format", "qr", "-o", text_file.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&text_file).unwrap(), stdout(&out));

    // PNG: 8 px per module, level Q.
    let png_path = hsm.path("ca.png");
    pubkey_ok(&hsm, &["--format", "png", "-o", png_path.to_str().unwrap()]);
    let (w, h, luma) = png_luma(&png_path);
    assert_eq!(w, h);
    assert_eq!(w % 8, 0, "{algorithm}: 8 px per module");
    let modules = w / 8;
    assert_eq!((modules - 8 - 17) % 4, 0, "{algorithm}: {modules} modules");
    assert!(luma[..w * 32].iter().all(|p| *p == 255), "quiet zone");
    let decoded = decode(w, h, &luma);
    assert_eq!(decoded, vec![(ECC_Q, line.clone())], "{algorithm}: PNG");

    // SVG on stdout, sized in mm with modules of at least 0.6 mm.
    let svg = stdout(&pubkey_ok(&hsm, &["--format", "svg"]));
    let mm: f32 = svg
        .split("width=\"")
        .nth(1)
        .and_then(|s| s.split("mm\"").next())
        .unwrap()
        .parse()
        .unwrap();
    let module_mm = mm / modules as f32;
    assert!(
        module_mm >= 0.6,
        "{algorithm}: SVG modules of {module_mm} mm"
    );
    let (w, h, luma) = render_svg(&svg, 5.0 / module_mm, false);
    assert_eq!(
        decode(w, h, &luma),
        vec![(ECC_Q, line.clone())],
        "{algorithm}: SVG"
    );

    // The sheet: its primary QR code decodes to the line, its fingerprint is ssh-keygen's.
    let sheet_path = hsm.path("sheet.svg");
    pubkey_ok(
        &hsm,
        &["--format", "sheet", "-o", sheet_path.to_str().unwrap()],
    );
    let sheet = std::fs::read_to_string(&sheet_path).unwrap();
    assert!(sheet.contains("width=\"210mm\" height=\"297mm\""));
    let module = sheet_module_mm(&sheet, "primary-qr");
    assert!(module >= 0.6, "{algorithm}: sheet modules of {module} mm");
    let (w, h, luma) = render_svg(&sheet, 5.0 / module, false);
    let decoded = decode(w, h, &luma);
    assert!(
        decoded.iter().any(|(ecc, s)| *ecc == ECC_Q && *s == line),
        "{algorithm}: the sheet's primary QR code: {decoded:?}"
    );
    let ca_pub = hsm.ca_pub_file();
    let fingerprints = ssh_keygen_fingerprints(&ca_pub);
    assert_eq!(fingerprints.len(), 1);
    assert_eq!(svg_text(&sheet, "primary-fingerprint"), fingerprints[0]);
    let blocks: Vec<String> = (1..=3)
        .map(|i| svg_text(&sheet, &format!("primary-fingerprint-blocks-{i}")))
        .collect();
    assert_eq!(
        blocks.join("").replace(' ', ""),
        fingerprints[0].trim_start_matches("SHA256:")
    );
    assert!(blocks
        .iter()
        .all(|b| b.split(' ').all(|block| block.chars().count() <= 4)));
    let created = Config::load(&hsm.state).unwrap().unwrap().created;
    assert!(!created.is_empty());
    assert_eq!(svg_text(&sheet, "primary-created"), created);
    let algorithm_text = svg_text(&sheet, "primary-algorithm");
    assert!(
        algorithm_text.starts_with(algorithm),
        "{algorithm_text} for {algorithm}"
    );
    assert!(svg_text(&sheet, "primary-token").contains("emergency-ca"));
    if let Some(path) = std::env::var_os("BREAKGLASS_SHEET_PNG") {
        if algorithm == "rsa-4096" {
            let (w, h, luma) = render_svg(&sheet, 5.0, true);
            write_png(Path::new(&path), w, h, &luma);
        }
    }
}

#[test]
fn qr_p256() {
    qr_round_trip("ecdsa-p256");
}

#[test]
fn qr_p384() {
    qr_round_trip("ecdsa-p384");
}

#[test]
fn qr_ed25519() {
    qr_round_trip("ed25519");
}

#[test]
fn qr_rsa4096() {
    qr_round_trip("rsa-4096");
}

/// On a terminal, `--format qr` draws the code in black on white (ANSI colours on every line of
/// it), and it decodes; the same command into a pipe gives the same blocks without any escape
/// sequence.
#[test]
fn qr_on_a_terminal_has_colours_and_in_a_pipe_none() {
    if !tools() || !require(&["script"]) {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    let line = hsm.init("ecdsa-p256");
    let screen = pubkey_on_terminal(&hsm, &["--format", "qr"]);
    let code: String = screen
        .lines()
        .filter(|l| l.starts_with(ANSI_DARK_ON_LIGHT))
        .map(|l| format!("{l}\n"))
        .collect();
    let rest: Vec<&str> = screen
        .lines()
        .filter(|l| !l.starts_with(ANSI_DARK_ON_LIGHT))
        .collect();
    assert!(
        rest.iter().all(|l| !l.contains('\x1b')),
        "escape sequences outside the code: {rest:?}"
    );
    assert!(
        rest.iter()
            .any(|l| l.starts_with("QR code of the CA public key line")),
        "{screen}"
    );
    assert_eq!(decode_terminal(&code, true), vec![(1, line.clone())]);
    let piped = stdout(&pubkey_ok(&hsm, &["--format", "qr"]));
    let plain = code.replace(ANSI_DARK_ON_LIGHT, "").replace(ANSI_RESET, "");
    assert_eq!(piped, plain);
}

/// Add backup CA lines to config.toml (as `add-backup-ca` would).
fn add_backups(hsm: &Hsm, lines: &[String]) {
    let mut config = Config::load(&hsm.state).unwrap().unwrap();
    config.backup_ca_pubkeys.extend(lines.iter().cloned());
    config.save(&hsm.state).unwrap();
}

fn keygen_line(dir: &Path, name: &str, args: &[&str]) -> String {
    let path = keygen(dir, name, args, &format!("{name}-ca"));
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

#[test]
fn bundle_and_backup_cas() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    let primary = hsm.init("ecdsa-p256");
    let keys = hsm.path("keys");
    std::fs::create_dir(&keys).unwrap();
    let backup1 = keygen_line(&keys, "vault-b", &["-t", "ecdsa", "-b", "256"]);
    let backup2 = keygen_line(&keys, "vault-c", &["-t", "ed25519"]);

    // Without backups, the bundle is the primary line alone.
    let out = pubkey_ok(&hsm, &["--bundle"]);
    assert_eq!(stdout(&out), format!("{primary}\n"));

    add_backups(&hsm, &[backup1.clone(), backup2.clone()]);
    let all = [primary.clone(), backup1.clone(), backup2.clone()];

    // openssh: one line each, primary first; exactly what ssh-keygen reads.
    let bundle = stdout(&pubkey_ok(&hsm, &["--bundle"]));
    assert_eq!(bundle, format!("{}\n", all.join("\n")));
    let bundle_file = hsm.path("bundle.pub");
    pubkey_ok(&hsm, &["--bundle", "-o", bundle_file.to_str().unwrap()]);
    let expected_fps = ssh_keygen_fingerprints(&bundle_file);
    assert_eq!(expected_fps.len(), 3);

    // Without --bundle nothing changes.
    assert_eq!(stdout(&pubkey_ok(&hsm, &[])), format!("{primary}\n"));

    // fingerprint: one per line, in the same order.
    let fps = stdout(&pubkey_ok(&hsm, &["--format", "fingerprint", "--bundle"]));
    assert_eq!(fps.lines().collect::<Vec<_>>(), expected_fps);

    // json: an array, primary first.
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&pubkey_ok(&hsm, &["--format", "json", "--bundle"]))).unwrap();
    let entries = json.as_array().unwrap();
    assert_eq!(entries.len(), 3);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["public_key"], all[i].as_str());
        assert_eq!(e["fingerprint"], expected_fps[i].as_str());
        assert_eq!(e["role"], if i == 0 { "primary" } else { "backup" });
    }

    // PNG, SVG and terminal QR codes of the whole bundle.
    let png_path = hsm.path("bundle.png");
    pubkey_ok(
        &hsm,
        &[
            "--format",
            "png",
            "--bundle",
            "-o",
            png_path.to_str().unwrap(),
        ],
    );
    let (w, h, luma) = png_luma(&png_path);
    assert_eq!(decode(w, h, &luma), vec![(ECC_Q, all.join("\n"))]);
    let svg = stdout(&pubkey_ok(&hsm, &["--format", "svg", "--bundle"]));
    let (w, h, luma) = render_svg(&svg, 5.0, false);
    assert_eq!(decode(w, h, &luma), vec![(ECC_Q, all.join("\n"))]);
    let terminal = stdout(&pubkey_ok(&hsm, &["--format", "qr", "--bundle"]));
    let decoded = decode_terminal(&terminal, false);
    assert_eq!(decoded.len(), 1);
    assert_eq!(decoded[0].1, all.join("\n"));

    // The sheet lists every backup with its fingerprint and its own QR code.
    let sheet_path = hsm.path("sheet.svg");
    pubkey_ok(
        &hsm,
        &["--format", "sheet", "-o", sheet_path.to_str().unwrap()],
    );
    let sheet = std::fs::read_to_string(&sheet_path).unwrap();
    assert_eq!(svg_text(&sheet, "primary-fingerprint"), expected_fps[0]);
    assert_eq!(sheet_backup_fingerprint(&sheet, 1), expected_fps[1]);
    assert_eq!(sheet_backup_fingerprint(&sheet, 2), expected_fps[2]);
    let smallest = ["primary-qr", "backup-qr-1", "backup-qr-2"]
        .iter()
        .map(|id| sheet_module_mm(&sheet, id))
        .fold(f32::MAX, f32::min);
    assert!(smallest >= 0.6);
    // Read back the way the image builder does (import-qr's search): rqrr alone misses one of
    // four codes this dense page holds at this scale.
    let found = codes_on_page(&sheet, 5.0 / smallest);
    let mut want = all.to_vec();
    want.sort();
    assert_eq!(found, want, "the sheet's three QR codes");
    if let Some(path) = std::env::var_os("BREAKGLASS_SHEET_PNG_BUNDLE") {
        let (w, h, luma) = render_svg(&sheet, 5.0, true);
        write_png(Path::new(&path), w, h, &luma);
    }

    // A key that is not the configured CA (--ca elsewhere) has no backups to bundle.
    hsm.add_token("other-ca");
    let other_uri = format!("pkcs11:token=other-ca?module-path={MODULE}");
    let other_state = hsm.path("other-state");
    let out = run(hsm
        .cmd()
        .env("BREAKGLASS_CA_STATE_DIR", &other_state)
        .args(["--ca", &other_uri, "init", "--algorithm", "ed25519"]));
    assert_ok(&out, "init other-ca");
    let out = run(hsm
        .cmd()
        .env_remove("BREAKGLASS_CA_PIN_FILE")
        .args(["--ca", &other_uri, "pubkey", "--bundle"]));
    assert_fails(&out, 1, "not for this key");
}

#[test]
fn bad_backups_and_limits_are_clear_errors() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    hsm.init("ecdsa-p256");

    // PNG needs a file.
    let out = pubkey(&hsm, &["--format", "png"]);
    assert_fails(&out, 2, "needs -o FILE");
    let out = pubkey(&hsm, &["--format", "png", "-o", "-"]);
    assert_fails(&out, 2, "needs -o FILE");

    // Three RSA-4096 backups: the bundle is too long for one QR code, and the sheet cannot
    // hold them all; both say what to do instead.
    let keys = hsm.path("keys");
    std::fs::create_dir(&keys).unwrap();
    let rsa: Vec<String> = (0..3)
        .map(|i| keygen_line(&keys, &format!("rsa{i}"), &["-t", "rsa", "-b", "4096"]))
        .collect();
    add_backups(&hsm, &rsa);
    let png_path = hsm.path("bundle.png");
    let out = pubkey(
        &hsm,
        &[
            "--format",
            "png",
            "--bundle",
            "-o",
            png_path.to_str().unwrap(),
        ],
    );
    assert_fails(&out, 2, "too long for one QR code");
    assert!(stderr(&out).contains("--format sheet"), "{}", stderr(&out));
    assert!(!png_path.exists());
    let out = pubkey(&hsm, &["--format", "qr", "--bundle"]);
    assert_ok(&out, "a terminal QR code (level L) still holds the bundle");
    let sheet_path = hsm.path("sheet.svg");
    let out = pubkey(
        &hsm,
        &["--format", "sheet", "-o", sheet_path.to_str().unwrap()],
    );
    assert_fails(&out, 1, "cannot hold");
    assert!(!sheet_path.exists());
    // The text bundle is fine at any length.
    let out = pubkey_ok(&hsm, &["--bundle"]);
    assert_eq!(stdout(&out).lines().count(), 4);

    // A damaged backup line in config.toml is a configuration error naming the entry.
    let mut config = Config::load(&hsm.state).unwrap().unwrap();
    config.backup_ca_pubkeys = vec![rsa[0].clone(), "ssh-ed25519 AAAAnot-a-key".into()];
    config.save(&hsm.state).unwrap();
    for args in [&["--bundle"][..], &["--format", "sheet"][..]] {
        let out = pubkey(&hsm, args);
        assert_fails(&out, 1, "backup_ca_pubkeys entry 2");
        assert!(stderr(&out).contains("config.toml"), "{}", stderr(&out));
    }
    // ... but the primary alone still exports.
    pubkey_ok(&hsm, &[]);
    pubkey_ok(&hsm, &["--format", "qr"]);
}

/// The key sheet of a token whose label holds an escape sequence, a CR and XML syntax, with a
/// `created` date in config.toml that holds ESC, a bidi override and U+FFFE (not allowed in
/// XML): a valid SVG document with those shown as visible escapes, and no raw control, format
/// or non-XML character anywhere.
#[test]
fn sheet_shows_hostile_labels_and_config_text_escaped() {
    if !tools() {
        return;
    }
    let label = "ca\u{1b}[2K\rKey: <b>&'x'";
    let hsm = Hsm::new(label);
    let uri = format!("pkcs11:token=ca%1B%5B2K%0DKey:%20%3Cb%3E%26'x'?module-path={MODULE}");
    let out = run(hsm
        .cmd()
        .args(["--ca", &uri, "init", "--algorithm", "ed25519"]));
    assert_ok(&out, "init on a token with a hostile label");
    let mut config = Config::load(&hsm.state).unwrap().unwrap();
    config.created = "2026-01-01\u{1b}[1A\u{202e}\u{fffe}forged".into();
    config.save(&hsm.state).unwrap();
    let sheet = hsm.path("sheet.svg");
    let out = pubkey(&hsm, &["--format", "sheet", "-o", sheet.to_str().unwrap()]);
    assert_ok(&out, "pubkey --format sheet");
    let svg = std::fs::read_to_string(&sheet).unwrap();
    usvg::Tree::from_str(&svg, &usvg::Options::default()).unwrap();
    let xml_char = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..);
    assert!(svg.chars().all(xml_char), "{svg:?}");
    assert!(
        svg.chars()
            .all(|c| c == '\n' || !breakglass_ca::text::is_unsafe_char(c)),
        "{svg:?}"
    );
    let token = svg_text(&svg, "primary-token");
    assert!(
        token.contains("ca\\e[2K\\rKey: &lt;b&gt;&amp;&apos;x&apos;"),
        "{token}"
    );
    assert_eq!(
        svg_text(&svg, "primary-created"),
        "2026-01-01\\e[1A\\u{202e}\u{fffd}forged"
    );
}

/// The text `id` of the sheet with the lines it was wrapped into (`ID-2`, `ID-3`...), joined
/// by `sep`.
fn sheet_lines(svg: &str, id: &str, sep: &str) -> String {
    let mut all = svg_text(svg, id);
    for j in 2.. {
        let next = format!("{id}-{j}");
        if !svg.contains(&format!("id=\"{next}\"")) {
            return all;
        }
        all.push_str(sep);
        all.push_str(&svg_text(svg, &next));
    }
    all
}

/// Backup CA `k`'s fingerprint on the sheet: one text, or (backups in columns) its lines
/// together.
fn sheet_backup_fingerprint(svg: &str, k: usize) -> String {
    sheet_lines(svg, &format!("backup-fingerprint-{k}"), "")
}

/// `add-backup-ca --label TEXT` names the backup's token: the label becomes its line's
/// comment (bundle) and the sheet's "Token:" of that backup; a backup without one gets a field
/// to fill in by hand. A label that is not plain text is refused, and so is a key already
/// listed without --label, both leaving the state directory as it was; --label on a listed key
/// relabels it. An RSA-4096 primary (the largest QR code) with three such backups still fits
/// the page, with the custodian's and witness's signature fields, and all four QR codes decode
/// from the rendering.
#[test]
fn backup_labels_on_the_sheet_of_an_rsa_primary_with_three_backups() {
    if !tools() {
        return;
    }
    let hsm = Hsm::new("emergency-ca");
    let primary = hsm.init("rsa-4096");
    let keys = hsm.path("keys");
    std::fs::create_dir(&keys).unwrap();
    let b1 = keygen(&keys, "b1", &["-t", "ecdsa", "-b", "384"], "breakglass-ca");
    let b2 = keygen(&keys, "b2", &["-t", "ecdsa", "-b", "256"], "breakglass-ca");
    let b3 = keygen(&keys, "b3", &["-t", "ed25519"], "breakglass-ca");
    let add = |args: &[&str], file: &Path| {
        run(hsm
            .cmd()
            .env_remove("BREAKGLASS_CA_PIN_FILE")
            .arg("add-backup-ca")
            .args(args)
            .arg(file))
    };
    let out = add(&["--label", "YubiKey 5 serial 23456789, vault B"], &b1);
    assert_ok(&out, "add-backup-ca --label");
    assert!(
        stderr(&out).contains("token 'YubiKey 5 serial 23456789, vault B'"),
        "{}",
        stderr(&out)
    );
    let out = add(&[], &b2);
    assert_ok(&out, "add-backup-ca");
    assert!(stderr(&out).contains("--label TEXT"), "{}", stderr(&out));
    let before = snapshot_state(&hsm.state);
    let out = add(&[], &b2);
    assert_fails(&out, 1, "is already listed");
    assert!(stderr(&out).contains("--label TEXT"), "{}", stderr(&out));
    for bad in [
        "vault #2",
        "tab\there",
        "",
        "\u{202e}olleh",
        &"x".repeat(65),
    ] {
        let out = add(&["--label", bad], &b2);
        assert_fails(&out, 2, "cannot name the token");
        assert!(!stderr(&out).contains('\u{202e}'));
    }
    assert_eq!(
        snapshot_state(&hsm.state),
        before,
        "a refusal changed the state"
    );
    let out = add(&["--label", "vault C"], &b2);
    assert_ok(&out, "relabel");
    assert!(
        stderr(&out).contains("now labelled 'vault C'"),
        "{}",
        stderr(&out)
    );
    assert_ok(&add(&[], &b3), "add-backup-ca");
    let config = Config::load(&hsm.state).unwrap().unwrap();
    assert_eq!(config.backup_ca_pubkeys.len(), 3);
    assert!(config.backup_ca_pubkeys[0].ends_with(" YubiKey 5 serial 23456789, vault B"));
    assert!(config.backup_ca_pubkeys[1].ends_with(" vault C"));
    let bundle = stdout(&pubkey_ok(&hsm, &["--bundle"]));
    assert_eq!(
        bundle.lines().nth(2),
        Some(config.backup_ca_pubkeys[1].as_str())
    );

    let sheet_path = hsm.path("sheet.svg");
    let out = pubkey_ok(
        &hsm,
        &["--format", "sheet", "-o", sheet_path.to_str().unwrap()],
    );
    assert!(
        stderr(&out).contains("with 3 backup CA(s)"),
        "{}",
        stderr(&out)
    );
    let sheet = std::fs::read_to_string(&sheet_path).unwrap();
    assert_eq!(
        sheet_lines(&sheet, "backup-token-1", " "),
        "Token: YubiKey 5 serial 23456789, vault B"
    );
    assert_eq!(sheet_lines(&sheet, "backup-token-2", " "), "Token: vault C");
    assert_eq!(svg_text(&sheet, "backup-token-3"), "Token:");
    assert!(sheet.contains("id=\"backup-token-3-blank\""));
    for id in [
        "signature-custodian-name",
        "signature-witness-signature",
        "signature-witness-date",
    ] {
        assert!(sheet.contains(&format!("<line id=\"{id}\"")), "{id}");
    }
    let fps = ssh_keygen_fingerprints(&{
        let f = hsm.path("bundle.pub");
        std::fs::write(&f, &bundle).unwrap();
        f
    });
    assert_eq!(svg_text(&sheet, "primary-fingerprint"), fps[0]);
    for (k, fp) in fps.iter().enumerate().skip(1) {
        assert_eq!(&sheet_backup_fingerprint(&sheet, k), fp, "backup {k}");
    }
    let smallest = ["primary-qr", "backup-qr-1", "backup-qr-2", "backup-qr-3"]
        .iter()
        .map(|id| sheet_module_mm(&sheet, id))
        .fold(f32::MAX, f32::min);
    assert!(smallest >= 0.6, "{smallest}");
    // Read back the way the image builder does (import-qr's search): rqrr alone misses one of
    // four codes this dense page holds at this scale.
    let found = codes_on_page(&sheet, 5.0 / smallest);
    let mut want: Vec<String> = bundle.lines().map(str::to_string).collect();
    want.sort();
    assert_eq!(found, want, "the sheet's four QR codes");
    assert!(want.contains(&primary));
    if let Some(path) = std::env::var_os("BREAKGLASS_SHEET_PNG_LABELS") {
        let (w, h, luma) = render_svg(&sheet, 5.0, true);
        write_png(Path::new(&path), w, h, &luma);
    }
}
