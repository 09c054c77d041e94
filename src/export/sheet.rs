//! The printable A4 key sheet (SVG) for the vault binder and the image pipeline.
//!
//! One A4 page (210 × 297 mm), black on white, generic `sans-serif` and `monospace` fonts only
//! (whatever the printing machine has). From top to bottom: the title; the primary CA's token,
//! key, URI, algorithm, creation date and SHA256 fingerprint (as text, and in blocks of four
//! characters to read aloud); its QR code (level Q, see [`super::qr`]); the key line in small
//! monospace; three steps for the host-image builder; then every backup CA with its token
//! (the label its line's comment gives, `add-backup-ca --label`, or a field to fill in by
//! hand), line, fingerprint and a smaller QR code of its own (one row each, a grid, or three
//! columns, whichever fits); then every CA key the ledger revokes, marked "REVOKED — do not
//! trust" with its fingerprint struck out and no QR code or key line (a revoked primary CA
//! gets that mark in place of its QR code), so a reader of an older printout can compare; at
//! the bottom, at a fixed place, name, signature and date fields for the custodian and a
//! witness. An RSA-4096 primary (the largest QR code) fits with up to three ECDSA or Ed25519
//! backups, or one RSA-4096 backup; the text is set denser (`STYLES`) before a page is
//! refused. Text is laid out with a fixed estimate of the
//! font's advance (0.61 em for monospace, 0.6 em for sans-serif, both generous), so nothing
//! runs off the page whatever font is substituted.

use std::fmt::Write as _;

use super::qr::{mm, xml_escape, Qr, MIN_MODULE_MM};
use super::CaLine;
use crate::error::{Error, Result};
use crate::key::Algorithm;
use crate::text;
use chrono::{DateTime, Utc};

const PAGE_W: f64 = 210.0;
const PAGE_H: f64 = 297.0;
/// Left and right margin.
const MARGIN: f64 = 15.0;
const TOP_MARGIN: f64 = 10.0;
const CONTENT_W: f64 = PAGE_W - 2.0 * MARGIN;
/// The footer's baseline.
const FOOTER_Y: f64 = PAGE_H - 7.0;
/// The signature fields, at a fixed place above the footer: their height.
const SIGNATURES_H: f64 = 23.0;
const SIGNATURES_TOP: f64 = FOOTER_Y - 4.0 - SIGNATURES_H;
/// Content must end above the signature fields.
const CONTENT_BOTTOM: f64 = SIGNATURES_TOP;
/// Advance of one character, in em, used to wrap text (generous for common fonts: DejaVu Sans
/// Mono and Liberation Mono are 0.60).
const MONO_EM: f64 = 0.61;
const SANS_EM: f64 = 0.6;
/// The primary QR code: modules of at most 1 mm, and at most this wide with its quiet zone.
const PRIMARY_QR_MAX_MM: f64 = 110.0;
const PRIMARY_MODULE_MAX_MM: f64 = 1.0;
/// Backup CA QR codes: the smallest module we print.
const BACKUP_MODULE_MM: f64 = MIN_MODULE_MM;
/// The narrowest column of backup CA text: a fingerprint (50 characters) at 2.4 mm.
const MIN_TEXT_W: f64 = 74.0;
/// Where values start in the field table.
const LABEL_W: f64 = 27.0;

/// How densely the text is set: the sheet is laid out in the first of [`STYLES`] that fits,
/// each tried at every module size of the primary QR code (largest first). QR codes never
/// shrink below [`MIN_MODULE_MM`] for it; text never below 2 mm.
#[derive(Clone, Copy, Debug)]
struct Style {
    /// The field table's font size.
    field: f64,
    /// The primary CA's key line's font size.
    key_line: f64,
    /// The space above a section heading, and its font size.
    heading: (f64, f64),
    /// The host-image builder's steps in four lines instead of five.
    short_steps: bool,
    /// Algorithm and creation date in one row of the field table.
    paired_fields: bool,
    /// The title's font size, and whether the line below it says what the CA is.
    title: (f64, bool),
}

const STYLES: [Style; 4] = [
    Style {
        field: 3.2,
        key_line: 2.4,
        heading: (6.5, 4.5),
        short_steps: false,
        paired_fields: false,
        title: (8.0, true),
    },
    Style {
        field: 3.2,
        key_line: 2.0,
        heading: (6.0, 4.2),
        short_steps: true,
        paired_fields: true,
        title: (8.0, true),
    },
    Style {
        field: 3.0,
        key_line: 2.0,
        heading: (5.5, 4.0),
        short_steps: true,
        paired_fields: true,
        title: (8.0, true),
    },
    Style {
        field: 2.9,
        key_line: 2.0,
        heading: (5.0, 3.8),
        short_steps: true,
        paired_fields: true,
        title: (6.5, false),
    },
];

/// What the sheet prints for a backup CA whose token is not named (the line's comment is the
/// default one), before a field to fill in by hand; the field's caption.
pub const TOKEN_BLANK: &str = "Token:";
pub const TOKEN_BLANK_CAPTION: &str = "label and serial, by hand";

/// A backup CA's token, as its line's comment names it ('add-backup-ca --label TEXT'), or
/// `None` when the comment is one of the defaults ([`super::BACKUP_COMMENT`], this tool's
/// [`crate::key::CA_COMMENT`]) or there is none. The comment is plain text
/// ([`super::plain_comment`]: [`super::backup_line`] made it so).
pub fn token_label(ca: &CaLine) -> Option<&str> {
    let comment = ca.line.splitn(3, ' ').nth(2)?.trim();
    let default = [super::BACKUP_COMMENT, crate::key::CA_COMMENT];
    (!comment.is_empty() && !default.contains(&comment)).then_some(comment)
}

/// Where the host-image builder puts the CA line(s), as in the instructions.
pub const HOST_CA_FILE: &str = "/etc/ssh/breakglass-ca.pub";
/// What the sheet says of a revoked CA key.
pub const REVOKED_MARK: &str = "REVOKED \u{2014} do not trust";

/// How the sheet names a CA's algorithm: `ecdsa-p256 (ecdsa-sha2-nistp256)`, or the OpenSSH
/// name alone for a key no breakglass CA can have.
fn algorithm_text(ca: &CaLine) -> String {
    let ssh = ca.key.algorithm();
    match Algorithm::of_key(&ca.key) {
        Some(a) => format!("{a} ({})", ssh.as_str()),
        None => ssh.as_str().to_string(),
    }
}

/// Everything the sheet shows.
#[derive(Clone, Debug)]
pub struct Sheet {
    pub primary: CaLine,
    /// The token, as the backend describes it.
    pub token: String,
    /// The key on it, as the backend describes it.
    pub key: String,
    /// The CA URI (from config.toml when there is one).
    pub uri: String,
    /// config.toml's `created`, if known.
    pub created: Option<String>,
    /// The backup CAs hosts trust (none of them revoked).
    pub backups: Vec<CaLine>,
    /// The CA keys the ledger revokes: the primary (then it is marked in place of its QR
    /// code) and backups (listed after the trusted ones), each struck out with its
    /// fingerprint, without QR code or key line.
    pub revoked: Vec<CaLine>,
    /// When the sheet was made.
    pub printed: DateTime<Utc>,
}

/// `SHA256:AbCd…` → `AbCd EfGh …` (the hash part in blocks of four characters).
pub fn fingerprint_blocks(fingerprint: &str) -> String {
    let hash = fingerprint
        .split_once(':')
        .map(|(_, h)| h)
        .unwrap_or(fingerprint);
    let chars: Vec<char> = hash.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The sheet as an SVG document. Fails if the backup CAs do not fit on one page even with the
/// primary QR code at its smallest module size.
pub fn render(sheet: &Sheet) -> Result<String> {
    let sheet = &shown(sheet);
    if is_revoked(sheet, &sheet.primary) && sheet.backups.is_empty() {
        return Err(Error::refused(format!(
            "the key sheet would show no CA to trust: this CA ({}) is revoked in the ledger and no backup CA is left",
            sheet.primary.fingerprint()
        ))
        .with_hint("print the sheet of a CA that is not revoked (its own --state-dir), or add a backup CA first ('breakglass-ca add-backup-ca FILE')"));
    }
    let primary_qr = Qr::for_print(&sheet.primary.line, "the CA public key line")?;
    let backup_qrs = sheet
        .backups
        .iter()
        .enumerate()
        .map(|(i, b)| Qr::for_print(&b.line, &format!("backup CA {}'s line", i + 1)))
        .collect::<Result<Vec<_>>>()?;
    // In steps of 0.05 mm, the largest that fits, in the first style that fits.
    let n = primary_qr.side() as f64;
    let largest = ((PRIMARY_QR_MAX_MM / n).min(PRIMARY_MODULE_MAX_MM) * 20.0).floor() / 20.0;
    for style in STYLES {
        let mut module = largest.max(MIN_MODULE_MM);
        loop {
            let (svg, bottom) = layout(sheet, &primary_qr, &backup_qrs, module, style);
            if bottom <= CONTENT_BOTTOM {
                return Ok(svg);
            }
            if module <= MIN_MODULE_MM + 1e-9 {
                break;
            }
            module = (module - 0.05).max(MIN_MODULE_MM);
        }
    }
    Err(Error::config(format!(
        "the key sheet cannot hold this CA and its {} backup CA(s) on one A4 page",
        sheet.backups.len()
    ))
    .with_hint(
        "print each backup CA's own sheet from its token ('breakglass-ca --ca URI pubkey --format sheet'), \
         and use 'pubkey --bundle' or 'host-config' for the combined file",
    ))
}

/// Whether `ca` is among the sheet's revoked CA keys.
fn is_revoked(sheet: &Sheet, ca: &CaLine) -> bool {
    sheet.revoked.iter().any(|r| r.key == ca.key)
}

/// The sheet with the text that comes from the token and config.toml (labels, URI, creation
/// date) as [`text::escape`] shows it: a control, bidi or other format character is printed as
/// a visible escape, never passed to the SVG (XML 1.0 forbids most C0 controls, and a bidi
/// override would reorder what the reader compares). The CA lines are generated with plain
/// comments (see [`super::backup_line`]) and the fingerprints and algorithms from the keys;
/// [`xml_escape`] still replaces anything unsafe in them.
fn shown(sheet: &Sheet) -> Sheet {
    let esc = |s: &str| text::escape(s).into_owned();
    // The backend already escaped the labels in its descriptions: only make sure of them.
    let checked = |s: &str| text::visible(s).into_owned();
    Sheet {
        token: checked(&sheet.token),
        key: checked(&sheet.key),
        uri: esc(&sheet.uri),
        created: sheet.created.as_deref().map(esc),
        ..sheet.clone()
    }
}

/// An SVG document under construction, with a vertical cursor (mm from the top).
struct Page {
    out: String,
    y: f64,
}

#[derive(Clone, Copy)]
enum Font {
    Sans,
    SansBold,
    Mono,
    MonoBold,
}

impl Font {
    fn attrs(self) -> &'static str {
        match self {
            Font::Sans => "font-family=\"sans-serif\"",
            Font::SansBold => "font-family=\"sans-serif\" font-weight=\"bold\"",
            Font::Mono => "font-family=\"monospace\"",
            Font::MonoBold => "font-family=\"monospace\" font-weight=\"bold\"",
        }
    }

    /// The estimated advance of one character, in em.
    fn em(self) -> f64 {
        match self {
            Font::Sans | Font::SansBold => SANS_EM,
            Font::Mono | Font::MonoBold => MONO_EM,
        }
    }

    /// Characters of this font at `size` that fit in `width` mm.
    fn chars_in(self, size: f64, width: f64) -> usize {
        ((width / (size * self.em())).floor() as usize).max(1)
    }
}

impl Page {
    /// One line of text with its baseline at `y`.
    fn text_at(&mut self, x: f64, y: f64, size: f64, font: Font, id: Option<&str>, text: &str) {
        let id = id.map(|i| format!(" id=\"{i}\"")).unwrap_or_default();
        let _ = writeln!(
            self.out,
            "<text{id} x=\"{}\" y=\"{}\" font-size=\"{}\" {}>{}</text>",
            mm(x),
            mm(y),
            mm(size),
            font.attrs(),
            xml_escape(text)
        );
    }

    /// One line of text with its baseline at `y`, struck out (`line-through`).
    fn struck_at(&mut self, x: f64, y: f64, size: f64, font: Font, id: &str, text: &str) {
        let _ = writeln!(
            self.out,
            "<text id=\"{id}\" x=\"{}\" y=\"{}\" font-size=\"{}\" {} text-decoration=\"line-through\">{}</text>",
            mm(x),
            mm(y),
            mm(size),
            font.attrs(),
            xml_escape(text)
        );
    }

    /// One line of text in several fonts (`<tspan>`s), baseline at `y`.
    fn text_runs(&mut self, x: f64, y: f64, size: f64, runs: &[(Font, &str)]) {
        let _ = write!(
            self.out,
            "<text x=\"{}\" y=\"{}\" font-size=\"{}\" xml:space=\"preserve\">",
            mm(x),
            mm(y),
            mm(size)
        );
        for (font, text) in runs {
            let _ = write!(
                self.out,
                "<tspan {}>{}</tspan>",
                font.attrs(),
                xml_escape(text)
            );
        }
        self.out.push_str("</text>\n");
    }

    /// Lines of text from the cursor down, at 1.35 line spacing.
    fn lines(&mut self, x: f64, size: f64, font: Font, lines: &[String]) {
        for line in lines {
            self.y += size * 1.35;
            self.text_at(x, self.y, size, font, None, line);
        }
    }

    /// A label and a value wrapped in the value column, at font size `size`.
    fn field(&mut self, size: f64, label: &str, value: &str, id: Option<&str>) {
        self.y += size * 1.4;
        let top = self.y;
        self.y = self.field_at(MARGIN, top, CONTENT_W, size, label, value, id);
    }

    /// A label at `x` and its value wrapped beside it, `width` in all, first baseline at `y`;
    /// returns the last baseline.
    #[allow(clippy::too_many_arguments)]
    fn field_at(
        &mut self,
        x: f64,
        y: f64,
        width: f64,
        size: f64,
        label: &str,
        value: &str,
        id: Option<&str>,
    ) -> f64 {
        let label_w = LABEL_W * size / 3.2;
        let chunks = wrap_chars(value, Font::Mono.chars_in(size, width - label_w));
        self.text_at(x, y, size, Font::SansBold, None, label);
        let mut y = y;
        for (i, chunk) in chunks.iter().enumerate() {
            if i > 0 {
                y += size * 1.3;
            }
            let id = if i == 0 { id } else { None };
            self.text_at(x + label_w, y, size, Font::Mono, id, chunk);
        }
        y
    }

    /// A horizontal line from `x1` to `x2` at `y` (a rule, or a field to write on).
    fn line(&mut self, x1: f64, x2: f64, y: f64, width: f64, id: Option<&str>) {
        let id = id.map(|i| format!(" id=\"{i}\"")).unwrap_or_default();
        let _ = writeln!(
            self.out,
            "<line{id} x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#000000\" stroke-width=\"{}\"/>",
            mm(x1),
            mm(y),
            mm(x2),
            mm(y),
            mm(width)
        );
    }

    fn rule(&mut self) {
        self.y += 3.0;
        let y = self.y;
        self.line(MARGIN, PAGE_W - MARGIN, y, 0.3, None);
    }

    fn heading(&mut self, style: Style, text: &str) {
        let (space, size) = style.heading;
        self.y += space;
        self.text_at(MARGIN, self.y, size, Font::SansBold, None, text);
    }
}

/// Lay the page out with the primary QR code at `module` mm; returns the SVG and the lowest
/// point the content reached (the footer, at a fixed place, is not counted).
fn layout(
    sheet: &Sheet,
    primary_qr: &Qr,
    backup_qrs: &[Qr],
    module: f64,
    style: Style,
) -> (String, f64) {
    let mut p = Page::start(&sheet.primary.fingerprint());
    title(&mut p, style);
    primary_fields(&mut p, sheet, style);
    if is_revoked(sheet, &sheet.primary) {
        revoked_primary(&mut p, &sheet.primary);
    } else {
        primary_code(&mut p, &sheet.primary, primary_qr, module, style);
    }
    instructions(&mut p, style);
    backups(&mut p, &sheet.backups, backup_qrs, style);
    revoked_cas(&mut p, sheet, style);
    let bottom = p.y;
    signatures(&mut p);
    footer(&mut p, sheet.printed);
    (p.out, bottom)
}

impl Page {
    /// The SVG header and white page of the sheet for the CA `fingerprint`, cursor at the top
    /// margin.
    fn start(fingerprint: &str) -> Page {
        let mut p = Page {
            out: String::new(),
            y: TOP_MARGIN,
        };
        let _ = writeln!(
            p.out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{w}mm\" height=\"{h}mm\" viewBox=\"0 0 {w} {h}\">\n\
             <title>breakglass-ca emergency SSH CA: {fp}</title>\n\
             <rect width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>\n\
             <g fill=\"#000000\">",
            w = mm(PAGE_W),
            h = mm(PAGE_H),
            fp = xml_escape(fingerprint),
        );
        p
    }
}

/// The title and what the CA is for (that line left out in the densest style).
fn title(p: &mut Page, style: Style) {
    let (size, intro) = style.title;
    p.y += size;
    p.text_at(
        MARGIN,
        p.y,
        size,
        Font::SansBold,
        None,
        "breakglass-ca emergency SSH CA",
    );
    if intro {
        let intro = wrap_words(
            "Signs short-lived emergency SSH certificates. Its private key never leaves the token.",
            Font::Sans.chars_in(3.2, CONTENT_W),
        );
        p.y += 1.0;
        p.lines(MARGIN, 3.2, Font::Sans, &intro);
    }
    p.rule();
}

/// The primary CA's facts as a table: token, key, URI, algorithm, creation, fingerprint
/// (algorithm and creation in one row in the denser styles).
fn primary_fields(p: &mut Page, sheet: &Sheet, style: Style) {
    p.heading(style, "Primary CA");
    p.y += 1.0;
    let size = style.field;
    p.field(size, "Token", &sheet.token, Some("primary-token"));
    p.field(size, "Key", &sheet.key, Some("primary-key"));
    p.field(size, "URI", &sheet.uri, Some("primary-uri"));
    let algorithm = algorithm_text(&sheet.primary);
    let created = sheet
        .created
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .unwrap_or("unknown (not in config.toml)");
    if style.paired_fields {
        p.y += size * 1.4;
        let y = p.y;
        let half = CONTENT_W * 0.52;
        let left = p.field_at(
            MARGIN,
            y,
            half,
            size,
            "Algorithm",
            &algorithm,
            Some("primary-algorithm"),
        );
        let right = p.field_at(
            MARGIN + half + 3.0,
            y,
            CONTENT_W - half - 3.0,
            size,
            "Created",
            created,
            Some("primary-created"),
        );
        p.y = left.max(right);
    } else {
        p.field(size, "Algorithm", &algorithm, Some("primary-algorithm"));
        p.field(size, "Created", created, Some("primary-created"));
    }
    p.field(
        size,
        "Fingerprint",
        &sheet.primary.fingerprint(),
        Some("primary-fingerprint"),
    );
}

/// The primary CA's QR code on the left; on the right, its fingerprint in blocks and the key
/// line.
fn primary_code(p: &mut Page, primary: &CaLine, qr: &Qr, module: f64, style: Style) {
    let side = qr.side() as f64 * module;
    let top = p.y + 4.0;
    p.out
        .push_str(&qr.svg_group(MARGIN, top, module, "primary-qr"));
    let x = MARGIN + side + 5.0;
    let width = PAGE_W - MARGIN - x;
    let mut q = Page {
        out: String::new(),
        y: top,
    };
    let label = wrap_words(
        "SHA256 fingerprint in blocks of four, to read aloud and compare (case matters):",
        Font::Sans.chars_in(3.0, width),
    );
    q.lines(x, 3.0, Font::Sans, &label);
    let blocks = fingerprint_blocks(&primary.fingerprint());
    let rows: Vec<String> = blocks
        .split(' ')
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|c| c.join(" "))
        .collect();
    let size = fit_size("xxxx xxxx xxxx xxxx", Font::MonoBold, 5.0, width);
    q.y += 1.0;
    for (i, row) in rows.iter().enumerate() {
        q.y += size * 1.4;
        let id = format!("primary-fingerprint-blocks-{}", i + 1);
        q.text_at(x, q.y, size, Font::MonoBold, Some(&id), row);
    }
    q.y += 3.0;
    let label = wrap_words(
        &format!(
            "The QR code holds exactly this key line (level {}, {} mm modules). It is one \
             line: the breaks here are only for print.",
            qr.level(),
            mm(module)
        ),
        Font::Sans.chars_in(3.0, width),
    );
    q.lines(x, 3.0, Font::Sans, &label);
    let line_size = style.key_line;
    let chunks = wrap_chars(&primary.line, Font::Mono.chars_in(line_size, width));
    q.y += 0.5;
    q.lines(x, line_size, Font::Mono, &chunks);
    p.out.push_str(&q.out);
    p.y = (top + side).max(q.y);
}

/// A revoked primary CA: the mark, why, and its fingerprint in blocks, struck out, in place of
/// its QR code and key line.
fn revoked_primary(p: &mut Page, primary: &CaLine) {
    p.y += 4.0 + 8.0;
    p.text_at(
        MARGIN,
        p.y,
        8.0,
        Font::SansBold,
        Some("primary-revoked"),
        REVOKED_MARK,
    );
    let why = wrap_words(
        "This CA key is revoked in the ledger ('breakglass-ca revoke --ca'): hosts must not \
         trust it, so this sheet prints no QR code or key line for it. Its fingerprint, struck \
         out, to compare with older printouts:",
        Font::Sans.chars_in(3.2, CONTENT_W),
    );
    p.y += 1.0;
    p.lines(MARGIN, 3.2, Font::Sans, &why);
    let blocks = fingerprint_blocks(&primary.fingerprint());
    let size = fit_size(&blocks, Font::MonoBold, 4.0, CONTENT_W);
    p.y += size * 1.5;
    p.struck_at(
        MARGIN,
        p.y,
        size,
        Font::MonoBold,
        "primary-fingerprint-revoked",
        &blocks,
    );
}

/// The revoked backup CAs, if any, after the trusted ones: the mark and the fingerprint, struck
/// out, of each.
fn revoked_cas(p: &mut Page, sheet: &Sheet, style: Style) {
    let listed: Vec<&CaLine> = sheet
        .revoked
        .iter()
        .filter(|r| r.key != sheet.primary.key)
        .collect();
    if listed.is_empty() {
        return;
    }
    p.rule();
    p.heading(
        style,
        &format!("Revoked CAs ({}): {REVOKED_MARK}", listed.len()),
    );
    let why = wrap_words(
        "Revoked in the ledger ('breakglass-ca revoke --ca'): hosts must not trust these keys. \
         A host, bundle or older sheet that lists one of these fingerprints must be updated.",
        Font::Sans.chars_in(3.0, CONTENT_W),
    );
    p.y += 0.5;
    p.lines(MARGIN, 3.0, Font::Sans, &why);
    for (i, ca) in listed.iter().enumerate() {
        let k = i + 1;
        let label = format!("Revoked CA {k} ({}):", ca.algorithm());
        let label_size = 3.2;
        p.y += label_size * 1.5;
        p.text_at(MARGIN, p.y, label_size, Font::SansBold, None, &label);
        let x = MARGIN + label.chars().count() as f64 * label_size * SANS_EM + 2.0;
        let fingerprint = ca.fingerprint();
        let size = fit_size(&fingerprint, Font::Mono, 3.0, PAGE_W - MARGIN - x);
        let id = format!("revoked-fingerprint-{k}");
        p.struck_at(x, p.y, size, Font::Mono, &id, &fingerprint);
    }
}

/// Three steps for the host-image builder (the third in one line in the denser styles).
fn instructions(p: &mut Page, style: Style) {
    p.rule();
    p.heading(style, "For the host-image builder");
    let file = format!("TrustedUserCAKeys {HOST_CA_FILE}");
    let check = format!("ssh-keygen -l -f {HOST_CA_FILE}");
    let host_config = "breakglass-ca host-config --user breakglass --out DIR";
    let short: [&[(Font, &str)]; 4] = [
        &[(
            Font::Sans,
            "1. Put every key line on this sheet, one per line, into the file that sshd_config names:",
        )],
        &[(Font::Mono, "   "), (Font::Mono, &file)],
        &[
            (Font::Sans, "2. Check: "),
            (Font::Mono, &check),
            (Font::Sans, " prints the fingerprint(s) on this sheet."),
        ],
        &[
            (Font::Sans, "3. All host files at once: "),
            (Font::Mono, host_config),
        ],
    ];
    let long: [&[(Font, &str)]; 5] = [
        &[(
            Font::Sans,
            "1. Put every key line on this sheet, one per line, into the file that sshd_config names:",
        )],
        &[(Font::Mono, "   "), (Font::Mono, &file)],
        &[
            (Font::Sans, "2. Check: "),
            (Font::Mono, &check),
            (Font::Sans, " prints the fingerprint(s) on this sheet."),
        ],
        &[(
            Font::Sans,
            "3. For the complete sshd_config.d snippet, principals files and an install script:",
        )],
        &[(Font::Mono, "   "), (Font::Mono, host_config)],
    ];
    let steps: &[&[(Font, &str)]] = if style.short_steps { &short } else { &long };
    let size = steps
        .iter()
        .map(|runs| fit_runs(runs, 3.2, CONTENT_W))
        .fold(3.2, f64::min);
    for runs in steps {
        p.y += size * 1.45;
        p.text_runs(MARGIN, p.y, size, runs);
    }
}

/// The signature fields at the bottom of the page: the custodian and a witness each write
/// their name, sign and date the page once they compared its fingerprints with the token.
fn signatures(p: &mut Page) {
    let top = SIGNATURES_TOP;
    p.line(MARGIN, PAGE_W - MARGIN, top + 1.0, 0.3, None);
    let fields = [
        ("name", 22.0, 84.0),
        ("signature", 90.0, 146.0),
        ("date", 152.0, CONTENT_W),
    ];
    for (i, (who, id)) in [("Custodian", "custodian"), ("Witness", "witness")]
        .into_iter()
        .enumerate()
    {
        let y = top + 10.0 + i as f64 * 10.0;
        p.text_at(
            MARGIN,
            y,
            3.2,
            Font::SansBold,
            Some(&format!("signature-{id}")),
            who,
        );
        for (what, from, to) in fields {
            let line_id = format!("signature-{id}-{what}");
            p.line(MARGIN + from, MARGIN + to, y, 0.25, Some(&line_id));
            p.text_at(MARGIN + from, y + 2.8, 2.2, Font::Sans, None, what);
        }
    }
}

/// The backup CAs, if any: one row per backup (with its fingerprint in blocks too) if that fits
/// the page, else the most compact arrangement.
fn backups(p: &mut Page, backups: &[CaLine], qrs: &[Qr], style: Style) {
    if backups.is_empty() {
        return;
    }
    p.rule();
    p.heading(
        style,
        &format!("Backup CAs ({}), trusted by hosts as well", backups.len()),
    );
    let mut best = backups_side_by_side(backups, qrs, p.y);
    if best.y > CONTENT_BOTTOM {
        let others = [
            backups_grid(backups, qrs, p.y, false),
            backups_grid(backups, qrs, p.y, true),
            backups_columns(backups, qrs, p.y),
        ];
        for other in others.into_iter().flatten() {
            if other.y < best.y {
                best = other;
            }
        }
    }
    p.out.push_str(&best.out);
    p.y = best.y;
}

/// When and by what the sheet was printed, and what to check before trusting it; then the end
/// of the document.
fn footer(p: &mut Page, printed: DateTime<Utc>) {
    let footer = format!(
        "Printed {} by breakglass-ca {}. Before trusting this sheet, check the fingerprint against 'breakglass-ca status' with the token.",
        printed.format("%Y-%m-%d %H:%M UTC"),
        env!("CARGO_PKG_VERSION")
    );
    let size = fit_size(&footer, Font::Sans, 2.6, CONTENT_W);
    p.text_at(MARGIN, FOOTER_Y, size, Font::Sans, None, &footer);
    p.out.push_str("</g>\n</svg>\n");
}

/// Each backup CA in a row of its own: its QR code, and beside it the algorithm, fingerprint
/// (also in blocks) and line. Suits one or two backups, or large (RSA) ones.
fn backups_side_by_side(backups: &[CaLine], qrs: &[Qr], y: f64) -> Page {
    let mut p = Page {
        out: String::new(),
        y,
    };
    for (i, (backup, qr)) in backups.iter().zip(qrs).enumerate() {
        let k = i + 1;
        let side = qr.side() as f64 * BACKUP_MODULE_MM;
        let top = p.y + 3.0;
        // On the right, out of line with the primary QR code on the left: decoders that
        // pair finder patterns across codes are not led astray.
        p.out.push_str(&qr.svg_group(
            PAGE_W - MARGIN - side,
            top,
            BACKUP_MODULE_MM,
            &format!("backup-qr-{k}"),
        ));
        let x = MARGIN;
        let width = CONTENT_W - side - 4.0;
        let mut q = Page {
            out: String::new(),
            y: top + 1.0,
        };
        q.y += 3.6;
        q.text_at(
            x,
            q.y,
            3.6,
            Font::SansBold,
            None,
            &format!("Backup CA {k}: {}", algorithm_text(backup)),
        );
        backup_token(&mut q, x, width, k, backup);
        backup_fingerprint(&mut q, x, width, k, backup);
        let blocks = fingerprint_blocks(&backup.fingerprint());
        let blocks = wrap_words(&blocks, Font::MonoBold.chars_in(3.4, width));
        q.y += 0.5;
        q.lines(x, 3.4, Font::MonoBold, &blocks);
        q.y += 1.0;
        backup_line(&mut q, x, width, backup);
        p.out.push_str(&q.out);
        p.y = (top + side).max(q.y) + 2.0;
    }
    p
}

/// The backup CAs' QR codes next to each other, right-aligned, as many per row as fit; each
/// one's algorithm, fingerprint and line either across the page below them, or (`beside`) in a
/// column left of them when they all fit in one row and leave room. Suits several keys, or a
/// large one with small ones. `None` if `beside` is asked for and there is no room.
fn backups_grid(backups: &[CaLine], qrs: &[Qr], y: f64, beside: bool) -> Option<Page> {
    let mut p = Page {
        out: String::new(),
        y,
    };
    // Right-aligned rows, out of line with the primary QR code (see above).
    let gap = 8.0;
    let right = PAGE_W - MARGIN;
    let mut x = right;
    let mut leftmost = right;
    let top = p.y + 3.0;
    let mut row_top = top;
    let mut row_height: f64 = 0.0;
    for (i, qr) in qrs.iter().enumerate().rev() {
        let k = i + 1;
        let side = qr.side() as f64 * BACKUP_MODULE_MM;
        if x < right && x - side < MARGIN {
            if beside {
                return None;
            }
            x = right;
            row_top += row_height + 2.0;
            row_height = 0.0;
        }
        x -= side;
        leftmost = leftmost.min(x);
        p.out
            .push_str(&qr.svg_group(x, row_top, BACKUP_MODULE_MM, &format!("backup-qr-{k}")));
        let _ = writeln!(
            p.out,
            "<text x=\"{}\" y=\"{}\" font-size=\"3.2\" {} text-anchor=\"middle\">Backup CA {k}</text>",
            mm(x + side / 2.0),
            mm(row_top + side + 3.5),
            Font::SansBold.attrs(),
        );
        row_height = row_height.max(side + 4.5);
        x -= gap;
    }
    let bottom = row_top + row_height;
    let (x, width) = if beside {
        let width = leftmost - gap - MARGIN;
        if width < MIN_TEXT_W {
            return None;
        }
        p.y = top - 2.0;
        (MARGIN, width)
    } else {
        p.y = bottom;
        (MARGIN, CONTENT_W)
    };
    for (i, backup) in backups.iter().enumerate() {
        let k = i + 1;
        p.y += 2.0;
        let title = wrap_words(
            &format!("Backup CA {k}: {}", algorithm_text(backup)),
            Font::SansBold.chars_in(3.4, width),
        );
        p.lines(x, 3.4, Font::SansBold, &title);
        backup_token(&mut p, x, width, k, backup);
        backup_fingerprint(&mut p, x, width, k, backup);
        backup_line(&mut p, x, width, backup);
    }
    p.y = p.y.max(bottom) + 2.0;
    Some(p)
}

/// Each backup CA in a column of its own, side by side: its QR code (right-aligned in the
/// column, out of line with the primary QR code), and below it the CA's number and algorithm,
/// token, fingerprint (in as many lines as the column needs) and line. The densest
/// arrangement, for three or more backups. `None` when there is only one, or a QR code is
/// wider than its column.
fn backups_columns(backups: &[CaLine], qrs: &[Qr], y: f64) -> Option<Page> {
    let n = backups.len();
    if n < 2 {
        return None;
    }
    let gap = 6.0;
    let width = (CONTENT_W - gap * (n - 1) as f64) / n as f64;
    let sides: Vec<f64> = qrs
        .iter()
        .map(|qr| qr.side() as f64 * BACKUP_MODULE_MM)
        .collect();
    let tallest = sides.iter().copied().fold(0.0, f64::max);
    if tallest > width {
        return None;
    }
    let mut p = Page {
        out: String::new(),
        y,
    };
    let top = y + 3.0;
    let mut bottom: f64 = top;
    for (i, ((backup, qr), side)) in backups.iter().zip(qrs).zip(&sides).enumerate() {
        let k = i + 1;
        let x = MARGIN + i as f64 * (width + gap);
        p.out.push_str(&qr.svg_group(
            x + width - side,
            top,
            BACKUP_MODULE_MM,
            &format!("backup-qr-{k}"),
        ));
        let mut q = Page {
            out: String::new(),
            y: top + tallest,
        };
        let title = format!("Backup CA {k}: {}", backup.algorithm());
        let size = fit_size(&title, Font::SansBold, 3.4, width);
        q.y += size * 1.4;
        q.text_at(x, q.y, size, Font::SansBold, None, &title);
        backup_token(&mut q, x, width, k, backup);
        let fingerprint = backup.fingerprint();
        let size = 2.6;
        for (j, chunk) in wrap_chars(&fingerprint, Font::Mono.chars_in(size, width))
            .iter()
            .enumerate()
        {
            q.y += size * 1.35;
            let id = match j {
                0 => format!("backup-fingerprint-{k}"),
                j => format!("backup-fingerprint-{k}-{}", j + 1),
            };
            q.text_at(x, q.y, size, Font::Mono, Some(&id), chunk);
        }
        backup_line(&mut q, x, width, backup);
        p.out.push_str(&q.out);
        bottom = bottom.max(q.y);
    }
    p.y = bottom + 2.0;
    Some(p)
}

/// A backup CA's token: its label as the line's comment names it, or a field to fill in by
/// hand (label and serial) when it is not known.
fn backup_token(p: &mut Page, x: f64, width: f64, k: usize, backup: &CaLine) {
    let size = 3.0;
    let id = format!("backup-token-{k}");
    match token_label(backup) {
        Some(label) => {
            // One line, down to 2.6 mm; else wrapped at 2.6 mm (a label has at most 64
            // characters).
            let text = format!("Token: {label}");
            let fitted = fit_size(&text, Font::Sans, size, width);
            if fitted >= 2.6 {
                p.y += fitted * 1.45;
                p.text_at(x, p.y, fitted, Font::Sans, Some(&id), &text);
            } else {
                let size = 2.6;
                let lines = wrap_words(&text, Font::Sans.chars_in(size, width));
                for (i, line) in lines.iter().enumerate() {
                    p.y += size * 1.35;
                    let id = match i {
                        0 => id.clone(),
                        i => format!("{id}-{}", i + 1),
                    };
                    p.text_at(x, p.y, size, Font::Sans, Some(&id), line);
                }
            }
        }
        None => {
            // Room to write in above the line, and its caption below.
            p.y += size * 2.0;
            p.text_at(x, p.y, size, Font::Sans, Some(&id), TOKEN_BLANK);
            let start = x + TOKEN_BLANK.chars().count() as f64 * size * SANS_EM + 1.5;
            let y = p.y + 0.4;
            p.line(start, x + width, y, 0.2, Some(&format!("{id}-blank")));
            p.y += 2.6;
            p.text_at(start, p.y, 2.0, Font::Sans, None, TOKEN_BLANK_CAPTION);
        }
    }
}

/// A backup CA's `SHA256:…` fingerprint on one line (with an id for tests), 3 mm or smaller
/// to fit `width` (callers give at least [`MIN_TEXT_W`]: 2.4 mm).
fn backup_fingerprint(p: &mut Page, x: f64, width: f64, k: usize, backup: &CaLine) {
    let fingerprint = backup.fingerprint();
    let size = fit_size(&fingerprint, Font::Mono, 3.0, width);
    p.y += size * 1.4;
    let id = format!("backup-fingerprint-{k}");
    p.text_at(x, p.y, size, Font::Mono, Some(&id), &fingerprint);
}

/// A backup CA's line, in small monospace.
fn backup_line(p: &mut Page, x: f64, width: f64, backup: &CaLine) {
    let size = 2.0;
    let chunks = wrap_chars(&backup.line, Font::Mono.chars_in(size, width));
    p.y += 0.3;
    p.lines(x, size, Font::Mono, &chunks);
}

/// The largest size up to `max` at which `text` fits in `width` mm in one line.
fn fit_size(text: &str, font: Font, max: f64, width: f64) -> f64 {
    fit_runs(&[(font, text)], max, width)
}

/// The largest size up to `max` at which these runs fit in `width` mm in one line.
fn fit_runs(runs: &[(Font, &str)], max: f64, width: f64) -> f64 {
    let ems: f64 = runs
        .iter()
        .map(|(font, text)| font.em() * text.chars().count() as f64)
        .sum();
    if ems <= 0.0 {
        max
    } else {
        (width / ems).min(max)
    }
}

/// Hard-wrap `text` every `width` characters (for key lines, URIs: no spaces to break at).
fn wrap_chars(text: &str, width: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars
        .chunks(width.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

/// Wrap `text` at spaces into lines of at most `width` characters (longer words are cut).
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let fits = line.chars().count() + 1 + word.chars().count() <= width;
        if !line.is_empty() && !fits {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        while line.chars().count() > width {
            let head: String = line.chars().take(width).collect();
            let rest: String = line.chars().skip(width).collect();
            lines.push(head);
            line = rest;
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::export::qr::tests::{decode_grey, fake_line};
    use ssh_key::public::KeyData;
    use std::path::Path;

    /// A CA line of `len` characters (for the size of its QR code) and a key of its own
    /// (`n` tells the keys apart: they are what the fingerprints come from).
    fn entry(kind: &str, len: usize, n: u8) -> CaLine {
        CaLine {
            line: fake_line(kind, len),
            key: KeyData::Ed25519(ssh_key::public::Ed25519PublicKey([n; 32])),
        }
    }

    pub(crate) fn sample(primary_len: usize, backups: &[usize]) -> Sheet {
        Sheet {
            primary: entry("ssh-rsa", primary_len, 0xff),
            token: "token 'emergency-ca' (SoftHSM project SoftHSM v2, serial 1a2b3c4d5e6f7081)"
                .into(),
            key: "key 'breakglass-ca' (id 01a2, ecdsa-p256)".into(),
            uri: "pkcs11:token=emergency-ca;object=breakglass-ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/x"
                .into(),
            created: Some("2026-11-22T03:00:00Z".into()),
            backups: backups
                .iter()
                .enumerate()
                .map(|(i, len)| entry("ecdsa-sha2-nistp256", *len, i as u8))
                .collect(),
            revoked: Vec::new(),
            printed: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }
    }

    /// `ca` with `label` as its line's comment, as 'add-backup-ca --label' stores it.
    fn labelled(ca: CaLine, label: &str) -> CaLine {
        let head = ca.line.rsplit_once(' ').unwrap().0;
        CaLine {
            line: format!("{head} {label}"),
            ..ca
        }
    }

    /// The sheets every layout test goes through: an RSA-4096 primary (the largest QR code)
    /// with no backup and with one, two and three (ECDSA P-256 and P-384 sized, named and not),
    /// one RSA-4096 backup, small primaries, and revoked keys.
    fn hard_cases() -> Vec<Sheet> {
        let mut cases = vec![
            sample(95, &[]),
            sample(740, &[]),
            sample(740, &[180]),
            sample(740, &[180, 180]),
            sample(740, &[180, 180, 180]),
            sample(740, &[220, 220, 220]),
            sample(740, &[740]),
            sample(180, &[180, 220, 95]),
            sample(740, &[95]),
        ];
        let mut named = sample(740, &[180, 180, 180]);
        named.backups[0] = labelled(named.backups[0].clone(), "YubiKey 5 NFC serial 23456789");
        named.backups[2] = labelled(named.backups[2].clone(), "vault B, token emergency-ca-2");
        cases.push(named);
        let mut named = sample(740, &[180]);
        named.backups[0] = labelled(named.backups[0].clone(), "vault-b");
        cases.push(named);
        // The longest labels there are (64 characters), which also lengthen the lines.
        let long = "YubiKey 5 NFC serial 23456789, emergency-ca-2, backup of 2026-11";
        assert_eq!(long.len(), crate::export::MAX_COMMENT_LEN);
        for backups in [&[180, 180, 180][..], &[180], &[180, 180], &[220, 220, 220]] {
            let mut named = sample(740, backups);
            for b in &mut named.backups {
                *b = labelled(b.clone(), long);
            }
            cases.push(named);
        }
        let with_revoked = |mut sheet: Sheet, primary: bool, n: u8| {
            if primary {
                sheet.revoked.push(sheet.primary.clone());
            }
            for i in 0..n {
                sheet.revoked.push(entry("ssh-rsa", 740, 0x80 + i));
            }
            sheet
        };
        cases.extend([
            with_revoked(sample(740, &[180]), false, 3),
            with_revoked(sample(740, &[740]), true, 1),
            with_revoked(sample(180, &[180, 180, 180]), true, 2),
        ]);
        cases
    }

    /// Render an SVG document to greyscale at `px_per_unit` pixels per user unit (mm).
    pub(crate) fn rasterise(svg: &str, px_per_unit: f32, fonts: bool) -> (usize, usize, Vec<u8>) {
        use resvg::{tiny_skia, usvg};
        let mut opt = usvg::Options::default();
        if fonts {
            let db = opt.fontdb_mut();
            db.load_system_fonts();
            // fontdb maps the generic families to Arial and Courier New; use what is installed.
            db.set_sans_serif_family("DejaVu Sans");
            db.set_monospace_family("DejaVu Sans Mono");
        }
        let tree = usvg::Tree::from_str(svg, &opt).unwrap();
        let size = tree.size();
        // usvg sizes mm documents at 96 dpi: scale to the wanted pixels per mm.
        let scale = px_per_unit / (96.0 / 25.4);
        let w = (size.width() * scale).ceil() as u32;
        let h = (size.height() * scale).ceil() as u32;
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

    /// Backup CA `k`'s fingerprint on the sheet: one line, or (in columns) the lines
    /// `backup-fingerprint-K`, `-K-2`... together.
    pub(crate) fn backup_fingerprint_of(svg: &str, k: usize) -> String {
        let mut all = text_of(svg, &format!("backup-fingerprint-{k}"));
        for j in 2.. {
            let id = format!("backup-fingerprint-{k}-{j}");
            if !svg.contains(&format!("id=\"{id}\"")) {
                break;
            }
            all.push_str(&text_of(svg, &id));
        }
        all
    }

    fn text_of(svg: &str, id: &str) -> String {
        let start = svg.find(&format!("id=\"{id}\"")).unwrap();
        let rest = &svg[start..];
        let open = rest.find('>').unwrap() + 1;
        let close = rest.find("</text>").unwrap();
        rest[open..close].to_string()
    }

    /// The whole sheet for real keys, byte for byte as pinned in `testdata/` (made by 0.2.0's
    /// layout code, then again when 0.4.0 added the signature fields and the backup tokens),
    /// with the backups in one row each (one backup), in columns (three) and none; the
    /// version in the footer aside. After a deliberate change of the layout, write them anew
    /// with `BREAKGLASS_SHEET_REPIN=1 cargo test --lib sheet_is_pinned` and look at them.
    #[test]
    fn sheet_is_pinned_byte_for_byte() {
        let primary = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPg1Q+KGCuYkBhj62eL5GTpL+Nz3uo3gA6grASzJ/8BuUX+8Lzh/y3w03WgmRPUQ7/PgOKfUhmp3NoHNj0geaAw= breakglass-ca";
        let backup = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG+V/GrTCEpmVtwcSFaoy8rFfAdppFU8knbeB/OBUXIi vault-b";
        let ca = |line: &str| CaLine {
            line: line.to_string(),
            key: ssh_key::PublicKey::from_openssh(line)
                .unwrap()
                .key_data()
                .clone(),
        };
        let version = |svg: &str| {
            svg.replace(
                &format!(" by breakglass-ca {}. ", env!("CARGO_PKG_VERSION")),
                " by breakglass-ca VERSION. ",
            )
            .replace(" by breakglass-ca 0.2.0. ", " by breakglass-ca VERSION. ")
        };
        for (backups, want, file) in [
            (
                vec![ca(backup)],
                include_str!("testdata/sheet-1.svg"),
                "sheet-1.svg",
            ),
            (
                vec![ca(backup), ca(primary), ca(backup)],
                include_str!("testdata/sheet-3.svg"),
                "sheet-3.svg",
            ),
            (vec![], include_str!("testdata/sheet-0.svg"), "sheet-0.svg"),
        ] {
            let sheet = Sheet {
                primary: ca(primary),
                token: "token 'emergency-ca' (SoftHSM project SoftHSM v2, serial 1a2b3c4d5e6f7081)"
                    .into(),
                key: "key 'breakglass-ca' (id 01a2, ecdsa-p256)".into(),
                uri: "pkcs11:token=emergency-ca;object=breakglass-ca?module-path=/usr/lib/softhsm/libsofthsm2.so"
                    .into(),
                created: Some("2026-11-22T03:00:00Z".into()),
                backups,
                revoked: Vec::new(),
                printed: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            };
            let svg = render(&sheet).unwrap();
            if std::env::var_os("BREAKGLASS_SHEET_REPIN").is_some() {
                let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/export/testdata");
                std::fs::write(dir.join(file), version(&svg)).unwrap();
                continue;
            }
            assert_eq!(version(&svg), version(want), "{file}");
        }
    }

    #[test]
    fn blocks_of_four() {
        assert_eq!(
            fingerprint_blocks("SHA256:abcdefghij"),
            "abcd efgh ij".to_string()
        );
        let fp = "SHA256:uKXNjJHxLbZ8q2bY2Zq8lOqk0mI0bG8r9pQz1w7Xy4c";
        let b = fingerprint_blocks(fp);
        assert_eq!(b.split(' ').count(), 11);
        assert_eq!(b.replace(' ', ""), fp["SHA256:".len()..]);
    }

    #[test]
    fn wrapping() {
        assert_eq!(wrap_chars("abcdefg", 3), vec!["abc", "def", "g"]);
        assert_eq!(wrap_chars("", 3), vec![""]);
        assert_eq!(
            wrap_words("one two three fourfivesix", 9),
            vec!["one two", "three", "fourfives", "ix"]
        );
    }

    #[test]
    fn sheet_has_the_facts_and_escapes_them() {
        let sheet = sample(180, &[180]);
        let svg = render(&sheet).unwrap();
        assert!(svg.contains("width=\"210mm\" height=\"297mm\" viewBox=\"0 0 210 297\""));
        assert!(svg.contains(">breakglass-ca emergency SSH CA</text>"));
        assert_eq!(
            text_of(&svg, "primary-fingerprint"),
            sheet.primary.fingerprint()
        );
        let blocks: Vec<String> = (1..=3)
            .map(|i| text_of(&svg, &format!("primary-fingerprint-blocks-{i}")))
            .collect();
        assert_eq!(
            blocks.join(" "),
            fingerprint_blocks(&sheet.primary.fingerprint())
        );
        assert_eq!(
            backup_fingerprint_of(&svg, 1),
            sheet.backups[0].fingerprint()
        );
        assert_eq!(text_of(&svg, "primary-created"), "2026-11-22T03:00:00Z");
        // The URI's '&' is escaped; the document parses as SVG.
        assert!(svg.contains("&amp;pin-source") || svg.contains("&amp;\n"));
        for (i, _) in svg.match_indices('&') {
            let rest = &svg[i..];
            assert!(
                ["&amp;", "&apos;", "&lt;", "&gt;", "&quot;"]
                    .iter()
                    .any(|e| rest.starts_with(e)),
                "unescaped & at {}",
                &svg[i..i + 20]
            );
        }
        assert!(text_of(&svg, "primary-token").contains("&apos;emergency-ca&apos;"));
        assert!(svg.contains("TrustedUserCAKeys /etc/ssh/breakglass-ca.pub"));
        assert!(svg.contains("breakglass-ca host-config"));
        assert!(svg.contains("ssh-keygen -l -f /etc/ssh/breakglass-ca.pub"));
        resvg::usvg::Tree::from_str(&svg, &resvg::usvg::Options::default()).unwrap();
        // No font family other than the generic ones.
        for family in svg.split("font-family=\"").skip(1) {
            let f = &family[..family.find('"').unwrap()];
            assert!(f == "sans-serif" || f == "monospace", "{f}");
        }
        let mut no_created = sheet.clone();
        no_created.created = None;
        let svg = render(&no_created).unwrap();
        assert!(text_of(&svg, "primary-created").starts_with("unknown"));
    }

    #[test]
    fn primary_and_backup_qr_codes_decode_from_the_rendered_page() {
        for (primary, backups) in [
            (740, vec![180, 95]),
            (740, vec![740]),
            (180, vec![180, 180, 180]),
            (740, vec![180]),
            (740, vec![180, 180, 180]),
            (740, vec![220, 220, 220]),
        ] {
            let sheet = sample(primary, &backups);
            let svg = render(&sheet).unwrap();
            // rqrr misses codes whose modules are about 2.6-2.9 or 3.8 px (aliasing); 5 px per
            // module of the smallest code is reliable.
            let (w, h, luma) = rasterise(&svg, (5.0 / MIN_MODULE_MM) as f32, false);
            let mut found = decode_grey(w, h, &luma);
            found.sort();
            let mut want: Vec<String> = std::iter::once(&sheet.primary)
                .chain(&sheet.backups)
                .map(|e| e.line.clone())
                .collect();
            want.sort();
            assert_eq!(found, want);
        }
    }

    #[test]
    fn text_stays_on_the_page() {
        // The widest text line, estimated generously, fits between the margins, and nothing
        // is placed below the footer.
        for sheet in hard_cases() {
            let svg = render(&sheet).unwrap();
            assert_eq!(
                text_of(&svg, "primary-fingerprint"),
                sheet.primary.fingerprint()
            );
            for (i, b) in sheet.backups.iter().enumerate() {
                assert_eq!(backup_fingerprint_of(&svg, i + 1), b.fingerprint());
            }
            for t in svg.split("<text").skip(1) {
                let attr = |name: &str| -> f64 {
                    let s = &t[t.find(&format!(" {name}=\"")).unwrap() + name.len() + 3..];
                    s[..s.find('"').unwrap()].parse().unwrap()
                };
                let (x, y, size) = (attr("x"), attr("y"), attr("font-size"));
                let body = &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()];
                let unescape = |s: &str| {
                    s.replace("&apos;", "'")
                        .replace("&amp;", "&")
                        .replace("&quot;", "\"")
                        .replace("&lt;", "<")
                        .replace("&gt;", ">")
                        .chars()
                        .count() as f64
                };
                let em = |attrs: &str| {
                    if attrs.contains("monospace") {
                        MONO_EM
                    } else {
                        SANS_EM
                    }
                };
                let width = if body.contains("<tspan") {
                    body.split("<tspan")
                        .skip(1)
                        .map(|span| {
                            let (attrs, rest) = span.split_once('>').unwrap();
                            let text = &rest[..rest.find("</tspan>").unwrap()];
                            unescape(text) * size * em(attrs)
                        })
                        .sum()
                } else {
                    unescape(body) * size * em(t)
                };
                let (left, right) = if t.contains("text-anchor=\"middle\"") {
                    (x - width / 2.0, x + width / 2.0)
                } else {
                    (x, x + width)
                };
                assert!(left >= MARGIN - 1e-6, "{body}: starts at {left}");
                assert!(right <= PAGE_W - MARGIN + 0.01, "{body}: ends at {right}");
                assert!(
                    (TOP_MARGIN..=FOOTER_Y + 1e-6).contains(&y),
                    "{body}: at y {y}"
                );
                assert!(size >= 2.0, "{body}: font size {size}");
            }
        }
    }

    /// `BREAKGLASS_SHEET_PNG=/tmp/x.png cargo test --lib sheet`: also write a sample sheet
    /// rendered with the system fonts, to look at (`BREAKGLASS_SHEET_SAMPLE=180,180` for the
    /// lengths of the lines, `BREAKGLASS_SHEET_REVOKED=primary,backup` for revoked keys,
    /// `BREAKGLASS_SHEET_LABEL=TEXT` for the backups' token label).
    #[test]
    fn sample_sheet_for_inspection() {
        let Some(path) = std::env::var_os("BREAKGLASS_SHEET_PNG") else {
            return;
        };
        let (len, backups): (usize, Vec<usize>) = match std::env::var("BREAKGLASS_SHEET_SAMPLE") {
            Ok(spec) => {
                let mut n = spec.split(',').map(|v| v.parse().unwrap());
                (n.next().unwrap(), n.collect())
            }
            Err(_) => (740, vec![180]),
        };
        let mut sheet = sample(len, &backups);
        // BREAKGLASS_SHEET_REVOKED=primary,backup: with this CA and/or one more key revoked.
        let revoked = std::env::var("BREAKGLASS_SHEET_REVOKED").unwrap_or_default();
        if revoked.contains("primary") {
            sheet.revoked.push(sheet.primary.clone());
        }
        if revoked.contains("backup") {
            sheet.revoked.push(entry("ssh-ed25519", 95, 0x77));
        }
        // BREAKGLASS_SHEET_LABEL=TEXT: every backup's token named so.
        if let Ok(label) = std::env::var("BREAKGLASS_SHEET_LABEL") {
            for b in &mut sheet.backups {
                *b = labelled(b.clone(), &label);
            }
        }
        let svg = render(&sheet).unwrap();
        let (w, h, luma) = rasterise(&svg, 5.0, true);
        let file = std::fs::File::create(path).unwrap();
        let mut enc = png::Encoder::new(file, w as u32, h as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header().unwrap().write_image_data(&luma).unwrap();
    }

    /// Labels, URI and creation date from the token and config.toml with escape sequences,
    /// C0/C1 controls, bidi overrides and characters XML forbids: the sheet is a valid SVG
    /// document, shows each of them as a visible escape, and holds no such character.
    #[test]
    fn hostile_token_and_config_text_is_escaped_on_the_sheet() {
        use crate::export::qr::tests::is_xml_char;
        let mut sheet = sample(180, &[180]);
        sheet.token = "token 'x\u{1b}[1A\u{1b}[2K\rToken: fake\u{1}' <b>".into();
        sheet.key = "key '\u{202e}cba\u{2028}\u{85}\u{0}'".into();
        sheet.uri = "pkcs11:token=a\u{fffe}\u{ffff}\u{7f}&x".into();
        sheet.created = Some("2026-01-01\nPrinted: forged\u{200b}".into());
        let svg = render(&sheet).unwrap();
        resvg::usvg::Tree::from_str(&svg, &resvg::usvg::Options::default()).unwrap();
        assert!(svg.chars().all(is_xml_char), "{svg:?}");
        assert!(
            svg.chars().all(|c| c == '\n' || !text::is_unsafe_char(c)),
            "{svg:?}"
        );
        assert_eq!(
            text_of(&svg, "primary-token"),
            "token &apos;x\\e[1A\\e[2K\\rToken: fake\\u{1}&apos; &lt;b&gt;"
        );
        assert_eq!(
            text_of(&svg, "primary-key"),
            "key &apos;\\u{202e}cba\\u{2028}\\u{85}\\u{0}&apos;"
        );
        assert!(
            text_of(&svg, "primary-uri").starts_with("pkcs11:token=a\u{fffd}\u{fffd}\\u{7f}&amp;x")
        );
        assert_eq!(
            text_of(&svg, "primary-created"),
            "2026-01-01\\nPrinted: forged\\u{200b}"
        );
        // The raw token label would not even parse.
        let raw = svg.replace("\\e[1A", "\u{1b}[1A");
        assert!(resvg::usvg::Tree::from_str(&raw, &resvg::usvg::Options::default()).is_err());
    }

    /// Revoked CA keys from a hand-made set: a revoked backup is listed after the trusted ones,
    /// marked, its fingerprint struck out, with no QR code and no key line; a revoked primary
    /// gets the mark and its fingerprint in blocks, struck out, in place of its QR code. Only
    /// the trusted keys' QR codes decode from the page, and the text stays on it.
    #[test]
    fn revoked_cas_are_struck_out_without_qr_code_or_line() {
        let mut sheet = sample(180, &[180]);
        let gone = entry("ssh-ed25519", 95, 0x77);
        sheet.revoked = vec![gone.clone()];
        let svg = render(&sheet).unwrap();
        resvg::usvg::Tree::from_str(&svg, &resvg::usvg::Options::default()).unwrap();
        assert!(
            svg.contains(&format!(">Revoked CAs (1): {REVOKED_MARK}</text>")),
            "{svg}"
        );
        assert_eq!(text_of(&svg, "revoked-fingerprint-1"), gone.fingerprint());
        let at = svg.find("id=\"revoked-fingerprint-1\"").unwrap();
        assert!(svg[at..]
            .lines()
            .next()
            .unwrap()
            .contains("text-decoration=\"line-through\""));
        assert!(
            !svg.contains(&gone.line[..40]),
            "the revoked key line is on the sheet"
        );
        assert!(!svg.contains("primary-revoked"));
        let (w, h, luma) = rasterise(&svg, (5.0 / MIN_MODULE_MM) as f32, false);
        let mut found = decode_grey(w, h, &luma);
        found.sort();
        let mut want = vec![sheet.primary.line.clone(), sheet.backups[0].line.clone()];
        want.sort();
        assert_eq!(found, want);

        // The primary revoked, one backup left.
        let mut sheet = sample(180, &[180]);
        sheet.revoked = vec![sheet.primary.clone()];
        let svg = render(&sheet).unwrap();
        assert_eq!(text_of(&svg, "primary-revoked"), xml_escape(REVOKED_MARK));
        assert_eq!(
            text_of(&svg, "primary-fingerprint-revoked"),
            fingerprint_blocks(&sheet.primary.fingerprint())
        );
        assert_eq!(
            text_of(&svg, "primary-fingerprint"),
            sheet.primary.fingerprint()
        );
        assert!(!svg.contains("primary-qr") && !svg.contains("primary-fingerprint-blocks-1"));
        assert!(
            !svg.contains("Revoked CAs ("),
            "the primary is not listed twice"
        );
        let (w, h, luma) = rasterise(&svg, (5.0 / MIN_MODULE_MM) as f32, false);
        assert_eq!(
            decode_grey(w, h, &luma),
            vec![sheet.backups[0].line.clone()]
        );

        // Nothing left to trust.
        let mut sheet = sample(180, &[]);
        sheet.revoked = vec![sheet.primary.clone()];
        let err = render(&sheet).unwrap_err();
        assert!(err.to_string().contains("no CA to trust"), "{err}");
        assert!(err.hint().is_some());
    }

    #[test]
    fn too_many_backups_is_a_clear_error() {
        let err = render(&sample(740, &[740, 740, 740])).unwrap_err();
        assert!(err.to_string().contains("cannot hold"), "{err}");
        assert!(err.hint().is_some());
    }

    /// The custodian's and a witness's name, signature and date fields, at the bottom of every
    /// sheet; each backup CA's token: its label when the line's comment names one, else a
    /// field to fill in by hand.
    #[test]
    fn signature_fields_and_backup_tokens() {
        let mut sheet = sample(180, &[180, 95]);
        sheet.backups[0] = labelled(sheet.backups[0].clone(), "YubiKey 5 serial 23456789");
        assert_eq!(
            token_label(&sheet.backups[0]),
            Some("YubiKey 5 serial 23456789")
        );
        assert_eq!(
            token_label(&sheet.backups[1]),
            None,
            "breakglass-ca is no label"
        );
        let backup = labelled(sheet.backups[1].clone(), crate::export::BACKUP_COMMENT);
        assert_eq!(token_label(&backup), None);
        let svg = render(&sheet).unwrap();
        assert_eq!(
            text_of(&svg, "backup-token-1"),
            "Token: YubiKey 5 serial 23456789"
        );
        assert!(!svg.contains("backup-token-1-blank"));
        assert_eq!(text_of(&svg, "backup-token-2"), TOKEN_BLANK);
        assert!(svg.contains("id=\"backup-token-2-blank\""));
        assert!(svg.contains(&format!(">{TOKEN_BLANK_CAPTION}</text>")));
        for who in ["custodian", "witness"] {
            assert!(svg.contains(&format!("id=\"signature-{who}\"")), "{who}");
            for field in ["name", "signature", "date"] {
                let id = format!("signature-{who}-{field}");
                let at = svg
                    .find(&format!("<line id=\"{id}\""))
                    .unwrap_or_else(|| panic!("{id}"));
                let line = &svg[at..at + svg[at..].find("/>").unwrap()];
                let num = |a: &str| -> f64 {
                    let v = &line[line.find(&format!(" {a}=\"")).unwrap() + a.len() + 3..];
                    v[..v.find('"').unwrap()].parse().unwrap()
                };
                assert!(
                    num("x1") >= MARGIN && num("x2") <= PAGE_W - MARGIN,
                    "{line}"
                );
                assert!(
                    num("x2") - num("x1") >= 25.0,
                    "{id} is too short to write on"
                );
                assert!(
                    num("y1") > CONTENT_BOTTOM && num("y1") < FOOTER_Y - 3.0,
                    "{line}"
                );
            }
        }
        assert_eq!(text_of(&svg, "signature-custodian"), "Custodian");
        assert_eq!(text_of(&svg, "signature-witness"), "Witness");
        // With no backup, the same fields.
        let svg = render(&sample(95, &[])).unwrap();
        assert!(svg.contains("id=\"signature-witness-date\""));
    }

    /// Something drawn on the page: its text or id, and its box in mm.
    type Drawn = (String, resvg::tiny_skia::Rect);

    /// What resvg draws, in mm: each text's ink (its glyphs in the system fonts) and each QR
    /// code's square (quiet zone included), with its id or its text.
    fn drawn(svg: &str) -> (Vec<Drawn>, Vec<Drawn>) {
        use resvg::usvg;
        let mut opt = usvg::Options::default();
        let db = opt.fontdb_mut();
        db.load_system_fonts();
        db.set_sans_serif_family("DejaVu Sans");
        db.set_monospace_family("DejaVu Sans Mono");
        let tree = usvg::Tree::from_str(svg, &opt).unwrap();
        // usvg sizes mm documents at 96 dpi.
        let scale = tree.size().width() / PAGE_W as f32;
        let mm = |r: resvg::tiny_skia::Rect| {
            resvg::tiny_skia::Rect::from_ltrb(
                r.left() / scale,
                r.top() / scale,
                r.right() / scale,
                r.bottom() / scale,
            )
            .unwrap()
        };
        fn walk(
            g: &usvg::Group,
            mm: &dyn Fn(resvg::tiny_skia::Rect) -> resvg::tiny_skia::Rect,
            texts: &mut Vec<Drawn>,
            codes: &mut Vec<Drawn>,
        ) {
            for node in g.children() {
                match node {
                    usvg::Node::Group(g) if g.id().contains("-qr") => {
                        codes.push((g.id().to_string(), mm(g.abs_bounding_box())));
                    }
                    usvg::Node::Group(g) => walk(g, mm, texts, codes),
                    usvg::Node::Text(t) => {
                        let words: String = t.chunks().iter().map(|c| c.text()).collect();
                        texts.push((words, mm(t.abs_bounding_box())));
                    }
                    _ => {}
                }
            }
        }
        let (mut texts, mut codes) = (Vec::new(), Vec::new());
        walk(tree.root(), &mm, &mut texts, &mut codes);
        (texts, codes)
    }

    /// Rendered with resvg and real fonts (DejaVu, as fontconfig gives the generic families on
    /// Debian): every text and QR code lies on the A4 page, inside the margins; no two texts
    /// overlap, no text touches a QR code, and no two QR codes overlap; in every hard case.
    #[test]
    fn rendered_page_fits_and_nothing_overlaps() {
        let overlap = |a: &resvg::tiny_skia::Rect, b: &resvg::tiny_skia::Rect, slack: f32| {
            a.left() < b.right() - slack
                && b.left() < a.right() - slack
                && a.top() < b.bottom() - slack
                && b.top() < a.bottom() - slack
        };
        for sheet in hard_cases() {
            let what = format!(
                "primary {} bytes, backups {:?}, {} revoked",
                sheet.primary.line.len(),
                sheet
                    .backups
                    .iter()
                    .map(|b| b.line.len())
                    .collect::<Vec<_>>(),
                sheet.revoked.len()
            );
            let svg = render(&sheet).unwrap();
            let (texts, codes) = drawn(&svg);
            // Without fonts, resvg draws no text: this test would check nothing.
            assert!(
                texts.len() > 30,
                "{what}: {} texts drawn: no fonts?",
                texts.len()
            );
            assert_eq!(
                codes.len(),
                sheet.backups.len() + usize::from(!is_revoked(&shown(&sheet), &sheet.primary)),
                "{what}"
            );
            for (name, r) in texts.iter().chain(&codes) {
                let (m, top) = (MARGIN as f32 - 0.5, TOP_MARGIN as f32 - 0.5);
                assert!(
                    r.left() >= m
                        && r.right() <= PAGE_W as f32 - m
                        && r.top() >= top
                        && r.bottom() <= PAGE_H as f32 - 5.0,
                    "{what}: {name:?} at {r:?} is outside the page's margins"
                );
            }
            for (i, (a, ra)) in texts.iter().enumerate() {
                for (b, rb) in &texts[i + 1..] {
                    assert!(
                        !overlap(ra, rb, 0.05),
                        "{what}: {a:?} {ra:?} overlaps {b:?} {rb:?}"
                    );
                }
                for (b, rb) in &codes {
                    assert!(
                        !overlap(ra, rb, 0.0),
                        "{what}: {a:?} {ra:?} is on QR code {b} {rb:?}"
                    );
                }
            }
            for (i, (a, ra)) in codes.iter().enumerate() {
                for (b, rb) in &codes[i + 1..] {
                    assert!(
                        !overlap(ra, rb, 0.0),
                        "{what}: QR codes {a} and {b} overlap"
                    );
                }
            }
        }
    }
}
