//! Rebuilds a TrueType font from the packed form `fonts/pack.py` writes: a
//! table list whose glyf is in WOFF2's transformed form (W3C WOFF2 §5.1), which
//! compresses about 15% better than glyf itself. The glyphs come back exactly
//! (points, on-curve flags, contours, components, bounding boxes); only the
//! byte encoding of each glyph may differ from the original file's.

/// Why a packed font did not unpack: the bytes are not what `pack.py` writes.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(&'static str);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "packed font: {}", self.0)
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or(Malformed(what))?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, Malformed> {
        Ok(self.bytes(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, Malformed> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, Malformed> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// WOFF2's 255UInt16: one byte for 0-252, else a code and one or two bytes.
    fn u255(&mut self, what: &'static str) -> Result<u16, Malformed> {
        Ok(match self.u8(what)? {
            253 => self.u16(what)?,
            254 => 506 + u16::from(self.u8(what)?),
            255 => 253 + u16::from(self.u8(what)?),
            code => u16::from(code),
        })
    }
}

/// The font file the packed bytes describe.
pub fn unpack(packed: &[u8]) -> Result<Vec<u8>, Malformed> {
    let mut r = Reader::new(packed);
    if r.bytes(4, "magic")? != b"TWF1" {
        return Err(Malformed("not a TWF1 font"));
    }
    let count = r.u16("table count")? as usize;
    let mut directory = Vec::with_capacity(count);
    for _ in 0..count {
        let tag: [u8; 4] = r.bytes(4, "table tag")?.try_into().map_err(|_| Malformed("table tag"))?;
        directory.push((tag, r.u32("table length")? as usize));
    }
    let mut tables: Vec<([u8; 4], Vec<u8>)> = Vec::with_capacity(count);
    let mut loca = None;
    for (tag, len) in directory {
        let data = r.bytes(len, "table data")?;
        if &tag == b"glyf" {
            let (glyf, rebuilt_loca, index_format) = rebuild_glyf(data)?;
            loca = Some((rebuilt_loca, index_format));
            tables.push((tag, glyf));
        } else {
            tables.push((tag, data.to_vec()));
        }
    }
    let (mut loca, index_format) = loca.ok_or(Malformed("no glyf table"))?;
    for (tag, data) in &mut tables {
        match &*tag {
            b"loca" => *data = std::mem::take(&mut loca),
            // head.indexToLocFormat must describe the loca built here.
            b"head" if data.len() >= 54 => data[50..52].copy_from_slice(&index_format.to_be_bytes()),
            _ => {}
        }
    }
    Ok(assemble(tables))
}

/// The transformed glyf's seven streams, in the order §5.1 lays them out.
struct Streams<'a> {
    contours: Reader<'a>,
    points: Reader<'a>,
    flags: Reader<'a>,
    glyphs: Reader<'a>,
    composites: Reader<'a>,
    bboxes: Reader<'a>,
    instructions: Reader<'a>,
}

/// glyf and loca from a transformed glyf, and the loca format (0 short, 1 long).
fn rebuild_glyf(transformed: &[u8]) -> Result<(Vec<u8>, Vec<u8>, u16), Malformed> {
    let mut h = Reader::new(transformed);
    h.u16("glyf header")?;
    let option_flags = h.u16("glyf header")?;
    let num_glyphs = h.u16("glyf header")? as usize;
    let index_format = h.u16("glyf header")?;
    let mut sizes = [0usize; 7];
    for s in &mut sizes {
        *s = h.u32("glyf stream size")? as usize;
    }
    let mut next = |i: usize| h.bytes(sizes[i], "glyf stream").map(Reader::new);
    let mut s = Streams {
        contours: next(0)?,
        points: next(1)?,
        flags: next(2)?,
        glyphs: next(3)?,
        composites: next(4)?,
        bboxes: next(5)?,
        instructions: next(6)?,
    };
    let overlap = if option_flags & 1 != 0 { Some(h.bytes(num_glyphs.div_ceil(8), "overlap bitmap")?) } else { None };
    let bbox_bitmap = s.bboxes.bytes(num_glyphs.div_ceil(32) * 4, "bbox bitmap")?;
    let bit = |bitmap: &[u8], i: usize| bitmap[i >> 3] & (0x80 >> (i & 7)) != 0;

    let mut glyf = Vec::with_capacity(transformed.len() * 3 / 2);
    let mut offsets = Vec::with_capacity(num_glyphs + 1);
    for i in 0..num_glyphs {
        offsets.push(glyf.len());
        let contours = s.contours.u16("contour count")? as i16;
        let explicit_bbox = bit(bbox_bitmap, i);
        if contours < 0 {
            if !explicit_bbox {
                return Err(Malformed("composite glyph without a bounding box"));
            }
            composite(&mut s, &mut glyf)?;
        } else if contours > 0 {
            let overlaps = overlap.is_some_and(|b| bit(b, i));
            simple(&mut s, contours as u16, explicit_bbox, overlaps, &mut glyf)?;
        }
        // Glyphs start on even offsets (short loca counts words); 4 keeps them aligned.
        while glyf.len() % 4 != 0 {
            glyf.push(0);
        }
    }
    offsets.push(glyf.len());
    let loca = if index_format == 0 {
        if glyf.len() / 2 > usize::from(u16::MAX) {
            return Err(Malformed("glyf too large for a short loca"));
        }
        offsets.iter().flat_map(|&o| ((o / 2) as u16).to_be_bytes()).collect()
    } else {
        offsets.iter().flat_map(|&o| (o as u32).to_be_bytes()).collect()
    };
    Ok((glyf, loca, index_format))
}

const ARG_1_AND_2_ARE_WORDS: u16 = 0x0001;
const WE_HAVE_A_SCALE: u16 = 0x0008;
const MORE_COMPONENTS: u16 = 0x0020;
const WE_HAVE_AN_X_AND_Y_SCALE: u16 = 0x0040;
const WE_HAVE_A_TWO_BY_TWO: u16 = 0x0080;
const WE_HAVE_INSTRUCTIONS: u16 = 0x0100;

/// A composite glyph: its component records are stored as glyf has them.
fn composite(s: &mut Streams, glyf: &mut Vec<u8>) -> Result<(), Malformed> {
    glyf.extend_from_slice(&(-1i16).to_be_bytes());
    glyf.extend_from_slice(s.bboxes.bytes(8, "composite bbox")?);
    let start = s.composites.pos;
    let mut instructions = false;
    loop {
        let flags = s.composites.u16("component")?;
        let args = if flags & ARG_1_AND_2_ARE_WORDS != 0 { 4 } else { 2 };
        let transform = if flags & WE_HAVE_A_SCALE != 0 {
            2
        } else if flags & WE_HAVE_AN_X_AND_Y_SCALE != 0 {
            4
        } else if flags & WE_HAVE_A_TWO_BY_TWO != 0 {
            8
        } else {
            0
        };
        s.composites.bytes(2 + args + transform, "component")?;
        instructions |= flags & WE_HAVE_INSTRUCTIONS != 0;
        if flags & MORE_COMPONENTS == 0 {
            break;
        }
    }
    glyf.extend_from_slice(&s.composites.data[start..s.composites.pos]);
    if instructions {
        let len = s.glyphs.u255("instruction length")?;
        glyf.extend_from_slice(&len.to_be_bytes());
        glyf.extend_from_slice(s.instructions.bytes(len.into(), "instructions")?);
    }
    Ok(())
}

const ON_CURVE: u8 = 0x01;
const X_SHORT: u8 = 0x02;
const Y_SHORT: u8 = 0x04;
const X_SAME_OR_POSITIVE: u8 = 0x10;
const Y_SAME_OR_POSITIVE: u8 = 0x20;
const OVERLAP_SIMPLE: u8 = 0x40;

/// A simple glyph: points from the flag and triplet streams (§5.2), written
/// back in glyf's encoding (short deltas where they fit, no flag repeats).
fn simple(s: &mut Streams, contours: u16, explicit_bbox: bool, overlaps: bool, glyf: &mut Vec<u8>) -> Result<(), Malformed> {
    let mut end_points = Vec::with_capacity(contours.into());
    let mut total: u32 = 0;
    for _ in 0..contours {
        total += u32::from(s.points.u255("point count")?);
        let end = u16::try_from(total.checked_sub(1).ok_or(Malformed("empty contour"))?).map_err(|_| Malformed("too many points"))?;
        end_points.push(end);
    }
    let mut points = Vec::with_capacity(total as usize);
    let (mut x, mut y) = (0i32, 0i32);
    for _ in 0..total {
        let flag = s.flags.u8("point flag")?;
        let (dx, dy) = triplet(flag & 0x7f, &mut s.glyphs)?;
        x += dx;
        y += dy;
        points.push((x, y, flag & 0x80 == 0));
    }
    let instruction_len = s.glyphs.u255("instruction length")?;
    let instructions = s.instructions.bytes(instruction_len.into(), "instructions")?;
    let bbox = if explicit_bbox {
        s.bboxes.bytes(8, "bbox")?.to_vec()
    } else {
        let (mut x0, mut y0, mut x1, mut y1) = (i32::MAX, i32::MAX, i32::MIN, i32::MIN);
        for &(x, y, _) in &points {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
        [x0, y0, x1, y1].iter().flat_map(|&v| (v as i16).to_be_bytes()).collect()
    };

    glyf.extend_from_slice(&(contours as i16).to_be_bytes());
    glyf.extend_from_slice(&bbox);
    for end in end_points {
        glyf.extend_from_slice(&end.to_be_bytes());
    }
    glyf.extend_from_slice(&instruction_len.to_be_bytes());
    glyf.extend_from_slice(instructions);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    let (mut px, mut py) = (0i32, 0i32);
    for (i, &(x, y, on)) in points.iter().enumerate() {
        let mut flag = if on { ON_CURVE } else { 0 };
        if i == 0 && overlaps {
            flag |= OVERLAP_SIMPLE;
        }
        flag |= delta(x - px, X_SHORT, X_SAME_OR_POSITIVE, &mut xs);
        flag |= delta(y - py, Y_SHORT, Y_SAME_OR_POSITIVE, &mut ys);
        (px, py) = (x, y);
        glyf.push(flag);
    }
    glyf.extend_from_slice(&xs);
    glyf.extend_from_slice(&ys);
    Ok(())
}

/// One coordinate delta in glyf's encoding; returns its flag bits.
fn delta(d: i32, short: u8, same_or_positive: u8, out: &mut Vec<u8>) -> u8 {
    if d == 0 {
        same_or_positive
    } else if d.unsigned_abs() < 256 {
        out.push(d.unsigned_abs() as u8);
        short | if d > 0 { same_or_positive } else { 0 }
    } else {
        out.extend_from_slice(&(d as i16).to_be_bytes());
        0
    }
}

/// A point's (dx, dy) from its flag (on-curve bit removed) and 1-4 bytes (WOFF2 §5.2, table 3).
fn triplet(flag: u8, r: &mut Reader) -> Result<(i32, i32), Malformed> {
    let with_sign = |f: u8, v: i32| if f & 1 != 0 { v } else { -v };
    let f = i32::from(flag);
    let n = match flag {
        0..=83 => 1,
        84..=119 => 2,
        120..=123 => 3,
        _ => 4,
    };
    let b: Vec<i32> = r.bytes(n, "point coordinates")?.iter().map(|&b| i32::from(b)).collect();
    Ok(match flag {
        0..=9 => (0, with_sign(flag, ((f & 14) << 7) + b[0])),
        10..=19 => (with_sign(flag, (((f - 10) & 14) << 7) + b[0]), 0),
        20..=83 => {
            let b0 = f - 20;
            (with_sign(flag, 1 + (b0 & 0x30) + (b[0] >> 4)), with_sign(flag >> 1, 1 + ((b0 & 0x0c) << 2) + (b[0] & 0x0f)))
        }
        84..=119 => {
            let b0 = f - 84;
            (with_sign(flag, 1 + ((b0 / 12) << 8) + b[0]), with_sign(flag >> 1, 1 + (((b0 % 12) >> 2) << 8) + b[1]))
        }
        120..=123 => (with_sign(flag, (b[0] << 4) + (b[1] >> 4)), with_sign(flag >> 1, ((b[1] & 0x0f) << 8) + b[2])),
        _ => (with_sign(flag, (b[0] << 8) + b[1]), with_sign(flag >> 1, (b[2] << 8) + b[3])),
    })
}

fn checksum(data: &[u8]) -> u32 {
    data.chunks(4).fold(0u32, |sum, c| {
        let mut word = [0u8; 4];
        word[..c.len()].copy_from_slice(c);
        sum.wrapping_add(u32::from_be_bytes(word))
    })
}

/// An sfnt (TrueType outlines) with the tables in tag order, each 4-byte aligned.
fn assemble(mut tables: Vec<([u8; 4], Vec<u8>)>) -> Vec<u8> {
    tables.sort_by_key(|(tag, _)| *tag);
    let n = tables.len() as u16;
    let entry_selector = 15 - n.max(1).leading_zeros() as u16;
    let search_range = 16u16 << entry_selector;
    let mut out = Vec::new();
    out.extend_from_slice(&0x0001_0000u32.to_be_bytes());
    for v in [n, search_range, entry_selector, n * 16 - search_range] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    let mut offset = 12 + 16 * tables.len();
    let mut head_at = None;
    for (tag, data) in &mut tables {
        if tag == b"head" && data.len() >= 12 {
            data[8..12].fill(0);
            head_at = Some(offset);
        }
        out.extend_from_slice(tag);
        out.extend_from_slice(&checksum(data).to_be_bytes());
        out.extend_from_slice(&(offset as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        offset += data.len().div_ceil(4) * 4;
    }
    for (_, data) in &tables {
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(4) * 4, 0);
    }
    if let Some(at) = head_at {
        let adjustment = 0xB1B0_AFBAu32.wrapping_sub(checksum(&out));
        out[at + 8..at + 12].copy_from_slice(&adjustment.to_be_bytes());
    }
    out
}
