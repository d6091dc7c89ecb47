//! The embedded fonts, text shaping and measuring, and per-character fallback.
//!
//! Noto Sans (OFL-1.1, ~0.5 MB each weight) covers Latin, Greek and Cyrillic;
//! Droid Sans Fallback (Apache-2.0, 3.9 MB) covers CJK ideographs, kana and
//! Hangul but no Latin at all. Text is split into runs by which font has the
//! character, so "北京协和医院 (Site 2)" renders in both. Only the glyphs used
//! are embedded (krilla subsets), so a report stays around 40-100 KB.
//! The fonts ship packed (`fonts/pack.py`: hinting dropped, glyf in WOFF2's
//! transformed form, zstd; every glyph, advance and layout table kept: 5.1 MB
//! -> 1.75 MB of binary, where zstd of the files gave 2.2 MB), and are unpacked
//! on first use: the Noto faces with the first report, the CJK face (3.9 MB)
//! only when a report has a character Noto lacks. Licences and sources:
//! `fonts/README.md`.

use std::sync::LazyLock;

use krilla::text::{GlyphId, KrillaGlyph};

mod sfnt;

static NOTO_REGULAR: &[u8] = include_bytes!("../../fonts/NotoSans-Regular.twf.zst");
static NOTO_BOLD: &[u8] = include_bytes!("../../fonts/NotoSans-Bold.twf.zst");
static DROID_FALLBACK: &[u8] = include_bytes!("../../fonts/DroidSansFallbackFull.twf.zst");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    Regular,
    Bold,
}

/// One font: what the PDF embeds and what shapes text for it.
pub struct Face {
    pub pdf: krilla::text::Font,
    shaper: rustybuzz::Face<'static>,
    units_per_em: f32,
}

impl Face {
    fn load(compressed: &'static [u8], name: &str) -> Result<Face, String> {
        let inflated = unpack(compressed).map_err(|e| format!("font {name}: {e}"))?;
        // Kept for the life of the process, as the static it came from: the
        // shaper borrows it, and fonts are loaded once (see `FONTS`).
        let bytes: &'static [u8] = Box::leak(inflated.into_boxed_slice());
        let pdf = krilla::text::Font::new(bytes.into(), 0).ok_or_else(|| format!("font {name} is unreadable"))?;
        let shaper = rustybuzz::Face::from_slice(bytes, 0).ok_or_else(|| format!("font {name} is unreadable"))?;
        let units_per_em = shaper.units_per_em() as f32;
        Ok(Face { pdf, shaper, units_per_em })
    }

    fn has(&self, c: char) -> bool {
        self.shaper.glyph_index(c).is_some()
    }
}

/// The font file from its embedded form: one zstd frame of what
/// `fonts/pack.py` writes (fonts/README.md).
fn unpack(compressed: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut packed = Vec::new();
    ruzstd::decoding::StreamingDecoder::new(compressed)
        .map_err(|e| format!("zstd: {e}"))?
        .read_to_end(&mut packed)
        .map_err(|e| format!("zstd: {e}"))?;
    sfnt::unpack(&packed).map_err(|e| e.to_string())
}

pub struct Fonts {
    regular: Face,
    bold: Face,
}

/// Parsed once per execution environment; every report reuses them.
static FONTS: LazyLock<Result<Fonts, String>> =
    LazyLock::new(|| Ok(Fonts { regular: Face::load(NOTO_REGULAR, "NotoSans-Regular")?, bold: Face::load(NOTO_BOLD, "NotoSans-Bold")? }));

/// The CJK fallback, decompressed the first time a report needs a character the
/// Noto faces lack; most reports never do. Unreadable, it leaves such
/// characters to Noto's .notdef box rather than failing the report.
static CJK: LazyLock<Option<Face>> = LazyLock::new(|| match Face::load(DROID_FALLBACK, "DroidSansFallbackFull") {
    Ok(face) => Some(face),
    Err(e) => {
        tracing::error!(error = %e, "CJK fallback font unavailable");
        None
    }
});

pub fn fonts() -> Result<&'static Fonts, trialwatch::Error> {
    FONTS.as_ref().map_err(|e| trialwatch::Error::Internal(e.clone()))
}

/// A run of text in one font, shaped: glyph advances are in em.
#[derive(Clone)]
pub struct Run {
    pub face: &'static Face,
    pub text: String,
    pub glyphs: Vec<KrillaGlyph>,
    pub width_em: f32,
}

/// Shaped text: one or more runs drawn one after another.
#[derive(Clone)]
pub struct Shaped {
    pub runs: Vec<Run>,
    pub width_em: f32,
}

impl Shaped {
    pub fn width(&self, size: f32) -> f32 {
        self.width_em * size
    }
}

impl Fonts {
    /// The CJK fallback face (decompressed on first call).
    pub fn cjk(&self) -> Option<&'static Face> {
        CJK.as_ref()
    }

    fn primary(&self, weight: Weight) -> &Face {
        match weight {
            Weight::Regular => &self.regular,
            Weight::Bold => &self.bold,
        }
    }

    /// Splits `text` into runs by the font that has each character (the
    /// weight's Noto face first, then the CJK fallback), and shapes each run.
    /// A character neither has stays with Noto and shows as its .notdef box.
    pub fn shape(&'static self, text: &str, weight: Weight) -> Shaped {
        let primary = self.primary(weight);
        let mut runs: Vec<Run> = Vec::new();
        let mut start = 0;
        let mut current: Option<&'static Face> = None;
        for (i, c) in text.char_indices() {
            // The CJK face is asked (and so loaded) only for a character Noto lacks.
            let face = if primary.has(c) || c.is_whitespace() { primary } else { self.cjk().filter(|cjk| cjk.has(c)).unwrap_or(primary) };
            match current {
                Some(f) if std::ptr::eq(f, face) => {}
                Some(f) => {
                    runs.push(shape_run(f, &text[start..i]));
                    start = i;
                    current = Some(face);
                }
                None => current = Some(face),
            }
        }
        if let Some(f) = current {
            runs.push(shape_run(f, &text[start..]));
        }
        let width_em = runs.iter().map(|r| r.width_em).sum();
        Shaped { runs, width_em }
    }

    /// Width in points of `text` at `size`.
    pub fn width(&'static self, text: &str, weight: Weight, size: f32) -> f32 {
        self.shape(text, weight).width(size)
    }

    /// `text` cut to fit `max_width` points, with an ellipsis when cut.
    pub fn fit(&'static self, text: &str, weight: Weight, size: f32, max_width: f32) -> Shaped {
        let full = self.shape(text, weight);
        if full.width(size) <= max_width {
            return full;
        }
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        // Binary search on the number of characters kept.
        // The whole text does not fit, so at most all but one character is kept.
        let (mut lo, mut hi) = (0usize, chars.len().saturating_sub(1));
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            let candidate = format!("{}…", text[..chars[mid].0].trim_end());
            if self.shape(&candidate, weight).width(size) <= max_width {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let cut = chars.get(lo).map_or(text.len(), |(i, _)| *i);
        self.shape(&format!("{}…", text[..cut].trim_end()), weight)
    }
}

/// Ligatures off: a ligature glyph stands for several characters, and PDF
/// readers (lopdf among them) do not all map one glyph back to two characters,
/// so "fi" would not be found by search. Report text reads the same without.
const NO_LIGATURES: [rustybuzz::Feature; 2] = [
    rustybuzz::Feature { tag: rustybuzz::ttf_parser::Tag::from_bytes(b"liga"), value: 0, start: 0, end: u32::MAX },
    rustybuzz::Feature { tag: rustybuzz::ttf_parser::Tag::from_bytes(b"clig"), value: 0, start: 0, end: u32::MAX },
];

fn shape_run(face: &'static Face, text: &str) -> Run {
    let mut buffer = rustybuzz::UnicodeBuffer::new();
    buffer.push_str(text);
    buffer.guess_segment_properties();
    // Reports are laid out left to right; mixed-direction text is out of scope.
    buffer.set_direction(rustybuzz::Direction::LeftToRight);
    let output = rustybuzz::shape(&face.shaper, &NO_LIGATURES, buffer);
    let infos = output.glyph_infos();
    let positions = output.glyph_positions();
    let upem = face.units_per_em;
    let mut glyphs = Vec::with_capacity(infos.len());
    let mut width_em = 0.0;
    for (i, (info, pos)) in infos.iter().zip(positions).enumerate() {
        let start = info.cluster as usize;
        // A cluster ends where the next different cluster starts (LTR).
        let end = infos[i + 1..].iter().map(|n| n.cluster as usize).find(|&c| c != start).unwrap_or(text.len());
        let advance = pos.x_advance as f32 / upem;
        width_em += advance;
        glyphs.push(KrillaGlyph::new(
            GlyphId::new(info.glyph_id),
            advance,
            pos.x_offset as f32 / upem,
            pos.y_offset as f32 / upem,
            pos.y_advance as f32 / upem,
            start..end.max(start),
            None,
        ));
    }
    Run { face, text: text.to_owned(), glyphs, width_em }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_characters_fall_back_to_the_cjk_font_and_latin_stays_with_noto() {
        let f = fonts().unwrap();
        let s = f.shape("北京协和医院 (Site 2)", Weight::Regular);
        // GIVEN mixed text THEN two runs: the Han in Droid, the rest (from the space) in Noto
        assert_eq!(s.runs.len(), 2);
        assert_eq!(s.runs[0].text, "北京协和医院");
        assert!(std::ptr::eq(s.runs[0].face, f.cjk().unwrap()));
        assert!(std::ptr::eq(s.runs[1].face, &f.regular));
        // AND no glyph is .notdef (id 0): every character is drawable
        assert!(s.runs.iter().flat_map(|r| &r.glyphs).all(|g| g.glyph_id.to_u32() != 0));
        assert!(s.width(10.0) > 60.0, "six ideographs at 10 pt are about 60 pt wide");
    }

    #[test]
    fn text_too_wide_is_cut_with_an_ellipsis_to_fit() {
        let f = fonts().unwrap();
        let long = "Royal Infirmary of Edinburgh at Little France, Department of Cardiology";
        let fitted = f.fit(long, Weight::Regular, 9.0, 120.0);
        assert!(fitted.width(9.0) <= 120.0);
        let text: String = fitted.runs.iter().map(|r| r.text.as_str()).collect();
        assert!(text.ends_with('…') && text.starts_with("Royal"), "{text}");
        // AND text that fits is left alone
        let short = f.fit("Leeds", Weight::Regular, 9.0, 120.0);
        assert_eq!(short.runs[0].text, "Leeds");
    }

    /// What a report can draw with a font: every code point the font maps, with
    /// its glyph id, advance and outline (composites resolved), as one SHA-256.
    fn coverage_digest(font: &[u8]) -> (usize, String) {
        use rustybuzz::ttf_parser::{Face, OutlineBuilder};
        use sha2::{Digest, Sha256};
        struct Pen<'a>(&'a mut Sha256);
        impl OutlineBuilder for Pen<'_> {
            fn move_to(&mut self, x: f32, y: f32) {
                self.0.update([b'M'].iter().chain(&x.to_le_bytes()).chain(&y.to_le_bytes()).copied().collect::<Vec<u8>>());
            }
            fn line_to(&mut self, x: f32, y: f32) {
                self.0.update([b'L'].iter().chain(&x.to_le_bytes()).chain(&y.to_le_bytes()).copied().collect::<Vec<u8>>());
            }
            fn quad_to(&mut self, x1: f32, y1: f32, x: f32, y: f32) {
                let v: Vec<u8> = [x1, y1, x, y].iter().flat_map(|v| v.to_le_bytes()).collect();
                self.0.update([b"Q".as_slice(), &v].concat());
            }
            fn curve_to(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, x: f32, y: f32) {
                let v: Vec<u8> = [x1, y1, x2, y2, x, y].iter().flat_map(|v| v.to_le_bytes()).collect();
                self.0.update([b"C".as_slice(), &v].concat());
            }
            fn close(&mut self) {
                self.0.update(b"Z");
            }
        }
        let face = Face::parse(font, 0).unwrap();
        let mut hash = Sha256::new();
        let mut mapped = 0;
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let Some(glyph) = face.glyph_index(c) else { continue };
            mapped += 1;
            hash.update((c as u32).to_le_bytes());
            hash.update(glyph.0.to_le_bytes());
            hash.update(face.glyph_hor_advance(glyph).unwrap_or(u16::MAX).to_le_bytes());
            face.outline_glyph(glyph, &mut Pen(&mut hash));
            hash.update(b"|");
        }
        (mapped, hex::encode(hash.finalize()))
    }

    /// How the shaper sets kerned pairs, accents (precomposed and combining), and
    /// Latin, Greek, Cyrillic and CJK text with a font: glyph ids, advances and offsets, as one SHA-256.
    fn shaping_digest(font: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        let face = rustybuzz::Face::from_slice(font, 0).unwrap();
        let mut hash = Sha256::new();
        for text in [
            "AVATAR To Ty Wa Yo LT P. F, \"Tr\" ffi fl",
            "Royal Infirmary of Edinburgh – Cardiología, Zürich, Łódź, Ελληνικά, Москва",
            "Hôpital Saint-Éloi ǅ ẞ ŉ x\u{0301}y\u{0323}\u{0302} Việt Nam",
            "北京协和医院 (Site 2) 東京大学病院 서울대학교병원 カタカナ ｱｲｳ 、。「」",
        ] {
            let mut buffer = rustybuzz::UnicodeBuffer::new();
            buffer.push_str(text);
            let shaped = rustybuzz::shape(&face, &NO_LIGATURES, buffer);
            for (info, pos) in shaped.glyph_infos().iter().zip(shaped.glyph_positions()) {
                for v in [info.glyph_id as i32, info.cluster as i32, pos.x_advance, pos.x_offset, pos.y_offset] {
                    hash.update(v.to_le_bytes());
                }
            }
        }
        hex::encode(hash.finalize())
    }

    #[test]
    fn every_embedded_font_draws_and_shapes_every_code_point_as_the_original_font() {
        // GIVEN, for each original font file (SHA-256 in fonts/README.md), the number of code
        // points it maps and the two digests above, computed by these functions over that file
        for (packed, code_points, coverage, shaping) in [
            (
                NOTO_REGULAR,
                2841,
                "543788c5b098753850c530c0ebd88453a323b72865b559f6c7837cb7b4046842",
                "ea019366a63deca3889ec6024c9896d2b9ef5e62e19e8783c5b79f652cf7f8cf",
            ),
            (
                NOTO_BOLD,
                2841,
                "238cee822f74a3dcfcf5c8e8575fa3759549dcae4851c7ffc3346538c66aa58f",
                "63b81e5877a34b1449b025c005818bdb7667e5fcad8bd62dde04edb047c00191",
            ),
            (
                DROID_FALLBACK,
                28602,
                "c1b7c600142d7cb97a1eecc1ac04a8d94cdacd97f895fcc9f177d87319d36ef9",
                "fdb5a576c8cecfaab99a91ccea69d5078f339c74cb9fc5755e471ca66fb43d58",
            ),
        ] {
            // WHEN the embedded font is unpacked
            let font = unpack(packed).unwrap();
            // THEN it maps the same code points to the same glyphs, advances and outlines
            assert_eq!(coverage_digest(&font), (code_points, coverage.to_owned()));
            // AND kerning, marks and the CJK text shape exactly as with the original
            assert_eq!(shaping_digest(&font), shaping);
        }
    }

    #[test]
    fn empty_text_shapes_to_nothing() {
        let s = fonts().unwrap().shape("", Weight::Bold);
        assert!(s.runs.is_empty());
        assert_eq!(s.width(12.0), 0.0);
    }
}
