//! The embedded fonts, text shaping and measuring, and per-character fallback.
//!
//! Noto Sans (OFL-1.1, ~0.5 MB each weight) covers Latin, Greek and Cyrillic;
//! Droid Sans Fallback (Apache-2.0, 3.9 MB) covers CJK ideographs, kana and
//! Hangul but no Latin at all. Text is split into runs by which font has the
//! character, so "北京协和医院 (Site 2)" renders in both. Only the glyphs used
//! are embedded (krilla subsets), so a report stays around 40-100 KB.
//! The fonts ship zstd-compressed, every glyph kept (5.1 MB -> 2.2 MB of
//! binary; zlib gave 2.6 MB), and are decompressed on first use: the Noto
//! faces with the first report, the CJK face (3.9 MB) only when a report has
//! a character Noto lacks. Licences and sources: `fonts/README.md`.

use std::sync::LazyLock;

use krilla::text::{GlyphId, KrillaGlyph};

static NOTO_REGULAR: &[u8] = include_bytes!("../../fonts/NotoSans-Regular.ttf.zst");
static NOTO_BOLD: &[u8] = include_bytes!("../../fonts/NotoSans-Bold.ttf.zst");
static DROID_FALLBACK: &[u8] = include_bytes!("../../fonts/DroidSansFallbackFull.ttf.zst");

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
        let inflated = decompress(compressed).ok_or_else(|| format!("font {name} does not decompress"))?;
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

/// One zstd frame, as `zstd --ultra -22` writes it (fonts/README.md).
fn decompress(compressed: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    ruzstd::decoding::StreamingDecoder::new(compressed).ok()?.read_to_end(&mut out).ok()?;
    Some(out)
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

    #[test]
    fn every_embedded_font_decompresses_to_the_unmodified_file() {
        // GIVEN the SHA-256 of each original font file (fonts/README.md)
        use sha2::{Digest, Sha256};
        for (compressed, sha) in [
            (NOTO_REGULAR, "89c3c497f618fdaa0b2d1e98fef93582f28c71debd2c4a8cdf41f190ced2909d"),
            (NOTO_BOLD, "e83493c945848ecd4a9ad0f6d19164541a0d3e23a9c952304a00a46e00272ac5"),
            (DROID_FALLBACK, "acb6440a713d880a13a21b468ba7cd43f5a2b2934972e51be791c880730777b8"),
        ] {
            // WHEN decompressed THEN every byte (so every glyph) is there
            assert_eq!(hex::encode(Sha256::digest(decompress(compressed).unwrap())), sha);
        }
    }

    #[test]
    fn empty_text_shapes_to_nothing() {
        let s = fonts().unwrap().shape("", Weight::Bold);
        assert!(s.runs.is_empty());
        assert_eq!(s.width(12.0), 0.0);
    }
}
