//! JPEG validation by walking the file as a decoder must: every marker segment, every Huffman
//! table, and every scan's entropy-coded data decoded to the last coefficient of the last
//! block. Decoders built to show pictures fill a scan that ends early with zero bits and decode
//! noise as noise; this walk does not: a scan that ends before its last block, a code no table
//! holds, a run past the 64th coefficient or a restart marker out of order makes the file not
//! well-formed. No pixel is reconstructed (the inverse DCT cannot fail on coefficients that
//! decoded), so memory stays a few kilobytes for sequential JPEGs; progressive ones keep one
//! bit per coefficient for their refinement scans.

use std::io::{self, BufRead};

use crate::analysis::verdict::Verdict;

/// Progressive JPEGs keep 8 bytes a block: past this many blocks (a 268-megapixel picture
/// with three components) the walk stops and says so.
const MAX_PROGRESSIVE_BLOCKS: u64 = 1 << 22;

type Fail = String;

#[derive(Clone)]
struct Huffman {
    maxcode: [i32; 18],
    valptr: [i32; 17],
    mincode: [i32; 17],
    values: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], values: Vec<u8>) -> Result<Self, Fail> {
        let mut t = Huffman { maxcode: [-1; 18], valptr: [0; 17], mincode: [0; 17], values };
        let (mut code, mut k) = (0i32, 0i32);
        for l in 1..=16 {
            let n = counts[l - 1] as i32;
            t.valptr[l] = k;
            t.mincode[l] = code;
            code += n;
            k += n;
            if code > 1 << l {
                return Err("a Huffman table has more codes than its lengths allow".into());
            }
            t.maxcode[l] = if n > 0 { code - 1 } else { -1 };
            code <<= 1;
        }
        t.maxcode[17] = i32::MAX;
        Ok(t)
    }
}

/// Entropy-coded data, bit by bit; a marker ends it (no zero bits are made up).
struct Bits<R: BufRead> {
    r: R,
    byte: u8,
    left: u8,
    marker: Option<u8>,
    /// Bytes of scan data read, for messages.
    read: u64,
}

impl<R: BufRead> Bits<R> {
    fn next_byte(&mut self) -> Result<Option<u8>, Fail> {
        if self.marker.is_some() {
            return Ok(None);
        }
        let b = read_u8(&mut self.r)?.ok_or("the file ends inside a scan")?;
        if b != 0xFF {
            self.read += 1;
            return Ok(Some(b));
        }
        let mut next = read_u8(&mut self.r)?.ok_or("the file ends inside a scan")?;
        while next == 0xFF {
            next = read_u8(&mut self.r)?.ok_or("the file ends inside a scan")?;
        }
        if next == 0 {
            self.read += 1;
            return Ok(Some(0xFF));
        }
        self.marker = Some(next);
        Ok(None)
    }

    fn bit(&mut self) -> Result<u32, Fail> {
        if self.left == 0 {
            self.byte = self.next_byte()?.ok_or(SCAN_ENDS)?;
            self.left = 8;
        }
        self.left -= 1;
        Ok(((self.byte >> self.left) & 1) as u32)
    }

    fn bits(&mut self, n: u8) -> Result<u32, Fail> {
        let mut v = 0;
        for _ in 0..n {
            v = v << 1 | self.bit()?;
        }
        Ok(v)
    }

    fn decode(&mut self, t: &Huffman) -> Result<u8, Fail> {
        let mut code = self.bit()? as i32;
        let mut l = 1;
        while code > t.maxcode[l] {
            code = code << 1 | self.bit()? as i32;
            l += 1;
            if l > 16 {
                return Err("a Huffman code that no table holds: the scan data is corrupt".into());
            }
        }
        let i = (t.valptr[l] + code - t.mincode[l]) as usize;
        t.values.get(i).copied().ok_or_else(|| "a Huffman code past its table's values".into())
    }

    /// Drops the padding bits and reads up to the next marker.
    fn skip_to_marker(&mut self) -> Result<u8, Fail> {
        self.left = 0;
        while self.next_byte()?.is_some() {}
        Ok(self.marker.take().expect("next_byte stops only at a marker"))
    }
}

/// Said when a scan runs out before its last block.
const SCAN_ENDS: &str = "\0scan ends";

fn read_u8<R: BufRead>(r: &mut R) -> Result<Option<u8>, Fail> {
    let buf = r.fill_buf().map_err(|e| e.to_string())?;
    let Some(&b) = buf.first() else { return Ok(None) };
    r.consume(1);
    Ok(Some(b))
}

fn read_exact<R: BufRead>(r: &mut R, n: usize) -> Result<Vec<u8>, Fail> {
    let mut v = vec![0u8; n];
    io::Read::read_exact(r, &mut v).map_err(|_| "the file ends inside a marker segment".to_string())?;
    Ok(v)
}

struct Component {
    id: u8,
    /// Its quantization table: defined, at the latest, before its first scan.
    tq: u8,
    h: u32,
    v: u32,
    /// Blocks across and down, padded to whole MCUs.
    bw: u32,
    bh: u32,
    /// Blocks that hold picture (a non-interleaved scan covers only these).
    bw_real: u32,
    bh_real: u32,
    has_dc_scan: bool,
    /// Progressive: coefficients already non-zero, one bit each, per block.
    nonzero: Vec<u64>,
}

struct Frame {
    progressive: bool,
    width: u32,
    height: u32,
    mcux: u32,
    mcuy: u32,
    components: Vec<Component>,
}

/// Walks the JPEG; see the module comment.
pub fn check<R: BufRead>(r: R) -> Verdict {
    check_sized(r).0
}

/// What the frame header (SOF) says, wherever in the file it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSize {
    pub precision: u8,
    pub width: u32,
    pub height: u32,
    pub components: u8,
}

/// The walk's verdict and the frame header's sizes, when it reached one.
pub fn check_sized<R: BufRead>(r: R) -> (Verdict, Option<FrameSize>) {
    let mut size = None;
    let verdict = match walk(r, &mut size) {
        Ok(v) => v,
        Err(why) => Verdict::Invalid(why),
    };
    (verdict, size)
}

fn walk<R: BufRead>(mut r: R, size: &mut Option<FrameSize>) -> Result<Verdict, Fail> {
    if read_exact(&mut r, 2).ok().as_deref() != Some(&[0xFF, 0xD8][..]) {
        return Err("it does not start with the JPEG start-of-image marker (FFD8)".into());
    }
    let mut dc: [Option<Huffman>; 4] = Default::default();
    let mut ac: [Option<Huffman>; 4] = Default::default();
    let mut quant = [false; 4];
    let mut restart = 0u32;
    let mut frame: Option<Frame> = None;
    let mut scans = 0u32;
    let mut pending: Option<u8> = None;
    loop {
        let marker = match pending.take() {
            Some(m) => m,
            None => {
                let b = read_u8(&mut r)?.ok_or("it ends without the end-of-image marker (FFD9): it is truncated")?;
                if b != 0xFF {
                    return Err(format!("a byte {b:#04x} where a marker was expected"));
                }
                let mut m = 0xFF;
                while m == 0xFF {
                    m = read_u8(&mut r)?.ok_or("it ends inside a marker")?;
                }
                m
            }
        };
        match marker {
            0xD9 => {
                let Some(f) = &frame else { return Err("it has no frame header (SOF): there is no picture".into()) };
                if scans == 0 {
                    return Err("it has a frame header but no scan: there is no picture data".into());
                }
                if f.progressive && f.components.iter().any(|c| !c.has_dc_scan) {
                    return Err("a component has no DC scan: part of the picture is missing".into());
                }
                return Ok(Verdict::WellFormed);
            }
            0xD8 => return Err("a second start-of-image marker".into()),
            0xD0..=0xD7 => return Err(format!("a restart marker (RST{}) outside a scan", marker - 0xD0)),
            0x01 => continue,
            _ => {}
        }
        let len = u16::from_be_bytes(read_exact(&mut r, 2)?.try_into().expect("2 bytes")) as usize;
        if len < 2 {
            return Err(format!("marker FF{marker:02X} has a segment length of {len}"));
        }
        let seg = read_exact(&mut r, len - 2)?;
        if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) && seg.len() >= 6 {
            *size = Some(FrameSize {
                precision: seg[0],
                height: u16::from_be_bytes([seg[1], seg[2]]) as u32,
                width: u16::from_be_bytes([seg[3], seg[4]]) as u32,
                components: seg[5],
            });
        }
        match marker {
            0xC4 => {
                let mut s = &seg[..];
                while !s.is_empty() {
                    if s.len() < 17 {
                        return Err("a Huffman table segment is cut short".into());
                    }
                    let (class, id) = (s[0] >> 4, (s[0] & 15) as usize);
                    if class > 1 || id > 3 {
                        return Err(format!("a Huffman table of class {class}, id {id}"));
                    }
                    let counts: [u8; 16] = s[1..17].try_into().expect("16 bytes");
                    let n: usize = counts.iter().map(|&c| c as usize).sum();
                    if s.len() < 17 + n {
                        return Err("a Huffman table segment is cut short".into());
                    }
                    let table = Huffman::new(&counts, s[17..17 + n].to_vec())?;
                    let tables = if class == 0 { &mut dc } else { &mut ac };
                    tables[id] = Some(table);
                    s = &s[17 + n..];
                }
            }
            0xDB => {
                let mut s = &seg[..];
                while !s.is_empty() {
                    let (precision, id) = (s[0] >> 4, (s[0] & 15) as usize);
                    let size = if precision == 0 { 64 } else { 128 };
                    if id > 3 || s.len() < 1 + size {
                        return Err("a quantization table segment is malformed".into());
                    }
                    quant[id] = true;
                    s = &s[1 + size..];
                }
            }
            0xDD => {
                if seg.len() < 2 {
                    return Err("a restart interval segment is cut short".into());
                }
                restart = u16::from_be_bytes([seg[0], seg[1]]) as u32;
            }
            0xC0..=0xC2 => {
                if frame.is_some() {
                    return Err("a second frame header (SOF)".into());
                }
                frame = Some(parse_frame(&seg, marker == 0xC2)?);
            }
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Ok(Verdict::Limited(format!(
                    "the JPEG's headers were read; its scans use {} coding (SOF{}), which this check does not decode",
                    if marker >= 0xC9 { "arithmetic" } else { "lossless or hierarchical" },
                    marker - 0xC0
                )));
            }
            0xDA => {
                let f = frame.as_mut().ok_or("a scan before the frame header (SOF)")?;
                if let Some(c) = f.components.iter().find(|c| !quant[c.tq as usize]) {
                    return Err(format!("component {} uses quantization table {}, which is not defined", c.id, c.tq));
                }
                let mut bits = Bits { r: &mut r, byte: 0, left: 0, marker: None, read: 0 };
                match scan(&mut bits, &seg, f, &dc, &ac, restart) {
                    Ok(None) => {}
                    Ok(Some(limited)) => return Ok(limited),
                    Err(e) if e == SCAN_ENDS => {
                        return Err(format!(
                        "scan {} ends after {} bytes, before its last block: the picture data is cut short or corrupt",
                        scans + 1,
                        bits.read
                    ))
                    }
                    Err(e) => return Err(format!("scan {}: {e}", scans + 1)),
                }
                scans += 1;
                // Some encoders end a scan with one more restart marker: it carries no blocks.
                let mut next = bits.skip_to_marker()?;
                while (0xD0..=0xD7).contains(&next) {
                    next = bits.skip_to_marker()?;
                }
                pending = Some(next);
            }
            0xDC | 0xE0..=0xEF | 0xFE | 0xC8 | 0xF0..=0xFD => {}
            other => return Err(format!("an unknown marker FF{other:02X}")),
        }
    }
}

fn parse_frame(seg: &[u8], progressive: bool) -> Result<Frame, Fail> {
    if seg.len() < 6 {
        return Err("the frame header is cut short".into());
    }
    let precision = seg[0];
    let height = u16::from_be_bytes([seg[1], seg[2]]) as u32;
    let width = u16::from_be_bytes([seg[3], seg[4]]) as u32;
    let n = seg[5] as usize;
    if precision != 8 && precision != 12 {
        return Err(format!("the frame header declares {precision}-bit samples"));
    }
    if width == 0 || height == 0 {
        return Err(format!("the frame header declares {width}×{height} pixels"));
    }
    if n == 0 || n > 4 || seg.len() < 6 + 3 * n {
        return Err(format!("the frame header declares {n} components"));
    }
    let mut components = Vec::new();
    for i in 0..n {
        let c = &seg[6 + 3 * i..9 + 3 * i];
        let (h, v) = ((c[1] >> 4) as u32, (c[1] & 15) as u32);
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || c[2] > 3 {
            return Err(format!("component {} has sampling {h}×{v} or table {}", c[0], c[2]));
        }
        components.push(Component {
            id: c[0],
            tq: c[2],
            h,
            v,
            bw: 0,
            bh: 0,
            bw_real: 0,
            bh_real: 0,
            has_dc_scan: false,
            nonzero: Vec::new(),
        });
    }
    let hmax = components.iter().map(|c| c.h).max().expect("a component");
    let vmax = components.iter().map(|c| c.v).max().expect("a component");
    let (mcux, mcuy) = (width.div_ceil(8 * hmax), height.div_ceil(8 * vmax));
    let mut blocks = 0u64;
    for c in &mut components {
        c.bw = mcux * c.h;
        c.bh = mcuy * c.v;
        c.bw_real = (width * c.h).div_ceil(hmax).div_ceil(8);
        c.bh_real = (height * c.v).div_ceil(vmax).div_ceil(8);
        blocks += c.bw as u64 * c.bh as u64;
    }
    if progressive && blocks <= MAX_PROGRESSIVE_BLOCKS {
        for c in &mut components {
            c.nonzero = vec![0; (c.bw * c.bh) as usize];
        }
    }
    Ok(Frame { progressive, width, height, mcux, mcuy, components })
}

/// Decodes one scan's blocks; Some(limited) when the check cannot go on.
fn scan<R: BufRead>(
    bits: &mut Bits<R>,
    seg: &[u8],
    f: &mut Frame,
    dc: &[Option<Huffman>; 4],
    ac: &[Option<Huffman>; 4],
    restart: u32,
) -> Result<Option<Verdict>, Fail> {
    let ns = *seg.first().ok_or("the scan header is empty")? as usize;
    if ns == 0 || ns > 4 || seg.len() < 1 + 2 * ns + 3 {
        return Err(format!("the scan header declares {ns} components"));
    }
    let mut members = Vec::new();
    for i in 0..ns {
        let (id, tables) = (seg[1 + 2 * i], seg[2 + 2 * i]);
        let index = f
            .components
            .iter()
            .position(|c| c.id == id)
            .ok_or_else(|| format!("the scan names component {id}, which the frame does not have"))?;
        members.push((index, (tables >> 4) as usize, (tables & 15) as usize));
    }
    let tail = &seg[1 + 2 * ns..];
    let (ss, se, ah, al) = (tail[0] as usize, tail[1] as usize, tail[2] >> 4, tail[2] & 15);
    if f.progressive {
        if f.components.iter().any(|c| c.nonzero.is_empty()) {
            return Ok(Some(Verdict::Limited(format!(
                "the progressive JPEG's headers were read; its {}×{} pixels are more than this check keeps track of",
                f.width, f.height
            ))));
        }
        if se > 63 || ss > se || (ss == 0 && se != 0) || (ss > 0 && ns != 1) || al > 13 {
            return Err(format!("the progressive scan's parameters are invalid (Ss {ss}, Se {se}, {ns} components)"));
        }
    } else if ss != 0 || se != 63 || ah != 0 || al != 0 {
        return Err("a sequential scan's spectral parameters are not 0–63".into());
    }
    let table = |tables: &[Option<Huffman>; 4], id: usize, what: &str| {
        tables
            .get(id)
            .and_then(Option::as_ref)
            .cloned()
            .ok_or_else(|| format!("the scan uses {what} table {id}, which is not defined"))
    };
    let needs_dc = ss == 0 && ah == 0;
    let needs_ac = se > 0;
    let mut tables = Vec::new();
    for &(index, td, ta) in &members {
        let d = if needs_dc { Some(table(dc, td, "DC Huffman")?) } else { None };
        let a = if needs_ac { Some(table(ac, ta, "AC Huffman")?) } else { None };
        tables.push((index, d, a));
    }
    if ss == 0 {
        for &(index, _, _) in &members {
            f.components[index].has_dc_scan = true;
        }
    }
    // Blocks in decoding order: (component, block index) per MCU.
    let (units, per_mcu): (u64, Vec<(usize, u32, u32)>) = if ns == 1 {
        let c = &f.components[members[0].0];
        (c.bw_real as u64 * c.bh_real as u64, vec![(0, 1, 1)])
    } else {
        (
            f.mcux as u64 * f.mcuy as u64,
            members
                .iter()
                .enumerate()
                .map(|(i, &(index, _, _))| (i, f.components[index].h, f.components[index].v))
                .collect(),
        )
    };
    let mut eobrun = 0u32;
    let mut expected_rst = 0u8;
    for unit in 0..units {
        if restart > 0 && unit > 0 && unit % restart as u64 == 0 {
            bits.left = 0;
            while bits.next_byte()?.is_some() {}
            match bits.marker.take() {
                Some(m) if m == 0xD0 + expected_rst => expected_rst = (expected_rst + 1) % 8,
                Some(m) if (0xD0..=0xD7).contains(&m) => {
                    return Err(format!("RST{} where RST{expected_rst} was expected", m - 0xD0))
                }
                _ => return Err(SCAN_ENDS.into()),
            }
            eobrun = 0;
        }
        for &(member, h, v) in &per_mcu {
            let (index, ref dct, ref act) = tables[member];
            for by in 0..v {
                for bx in 0..h {
                    let c = &mut f.components[index];
                    let block = if ns == 1 {
                        let (x, y) = ((unit % c.bw_real as u64) as u32, (unit / c.bw_real as u64) as u32);
                        (y * c.bw + x) as usize
                    } else {
                        let (mx, my) = ((unit % f.mcux as u64) as u32, (unit / f.mcux as u64) as u32);
                        ((my * c.v + by) * c.bw + mx * c.h + bx) as usize
                    };
                    if !f.progressive {
                        sequential_block(bits, dct.as_ref().expect("a DC table"), act.as_ref().expect("an AC table"))?;
                    } else if ss == 0 {
                        if ah == 0 {
                            dc_first(bits, dct.as_ref().expect("a DC table"))?;
                        } else {
                            bits.bit()?;
                        }
                    } else {
                        let nz = &mut c.nonzero[block];
                        let t = act.as_ref().expect("an AC table");
                        if ah == 0 {
                            ac_first(bits, t, ss, se, nz, &mut eobrun)?;
                        } else {
                            ac_refine(bits, t, ss, se, nz, &mut eobrun)?;
                        }
                    }
                }
            }
        }
    }
    Ok(None)
}

fn dc_first<R: BufRead>(bits: &mut Bits<R>, dc: &Huffman) -> Result<(), Fail> {
    let t = bits.decode(dc)?;
    if t > 15 {
        return Err(format!("a DC difference of category {t}"));
    }
    bits.bits(t)?;
    Ok(())
}

fn sequential_block<R: BufRead>(bits: &mut Bits<R>, dc: &Huffman, ac: &Huffman) -> Result<(), Fail> {
    dc_first(bits, dc)?;
    let mut k = 1;
    while k < 64 {
        let rs = bits.decode(ac)?;
        let (r, s) = ((rs >> 4) as usize, rs & 15);
        if s == 0 {
            if r != 15 {
                return Ok(());
            }
            k += 16;
            continue;
        }
        k += r;
        if k > 63 {
            return Err("a run of zero coefficients past the block's 64th: the scan data is corrupt".into());
        }
        bits.bits(s)?;
        k += 1;
    }
    if k > 64 {
        return Err("a run of zero coefficients past the block's 64th: the scan data is corrupt".into());
    }
    Ok(())
}

/// An end-of-band run's length (EOBr: 2^r and r more bits), this block included.
fn end_of_band_run<R: BufRead>(bits: &mut Bits<R>, r: u8) -> Result<u32, Fail> {
    Ok((1 << r) + if r > 0 { bits.bits(r)? } else { 0 })
}

fn ac_first<R: BufRead>(
    bits: &mut Bits<R>,
    ac: &Huffman,
    ss: usize,
    se: usize,
    nonzero: &mut u64,
    eobrun: &mut u32,
) -> Result<(), Fail> {
    if *eobrun > 0 {
        *eobrun -= 1;
        return Ok(());
    }
    let mut k = ss;
    while k <= se {
        let rs = bits.decode(ac)?;
        let (r, s) = ((rs >> 4) as usize, rs & 15);
        if s == 0 {
            if r < 15 {
                // This block is the run's first: the rest of the run follows.
                *eobrun = end_of_band_run(bits, r as u8)? - 1;
                return Ok(());
            }
            k += 16;
            continue;
        }
        k += r;
        if k > se {
            return Err("a coefficient past the scan's spectral band: the scan data is corrupt".into());
        }
        bits.bits(s)?;
        *nonzero |= 1 << k;
        k += 1;
    }
    Ok(())
}

fn ac_refine<R: BufRead>(
    bits: &mut Bits<R>,
    ac: &Huffman,
    ss: usize,
    se: usize,
    nonzero: &mut u64,
    eobrun: &mut u32,
) -> Result<(), Fail> {
    let mut k = ss;
    if *eobrun == 0 {
        while k <= se {
            let rs = bits.decode(ac)?;
            let (mut r, s) = ((rs >> 4) as i32, rs & 15);
            if s != 0 {
                if s != 1 {
                    return Err(format!("a refinement coefficient of size {s} (must be 1)"));
                }
                bits.bit()?;
            } else if r != 15 {
                *eobrun = end_of_band_run(bits, r as u8)?;
                break;
            }
            while k <= se {
                if *nonzero & (1 << k) != 0 {
                    bits.bit()?;
                } else {
                    r -= 1;
                    if r < 0 {
                        break;
                    }
                }
                k += 1;
            }
            if s != 0 {
                if k > se {
                    return Err("a refined coefficient past the scan's spectral band".into());
                }
                *nonzero |= 1 << k;
            }
            k += 1;
        }
    }
    if *eobrun > 0 {
        while k <= se {
            if *nonzero & (1 << k) != 0 {
                bits.bit()?;
            }
            k += 1;
        }
        *eobrun -= 1;
    }
    Ok(())
}
