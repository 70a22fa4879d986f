//! JPEG 2000, a JP2 (or JPX) file or a raw codestream, read as a decoder reads its
//! structure: the boxes (signature, file type, header with its image header, the contiguous
//! codestream), each within the file; then the codestream's main header (SOC, SIZ with
//! coherent sizes, COD and QCD), every tile-part (SOT with its length, tile index and part
//! number, SOD) laid end to end, every tile present, and EOC where the codestream ends. The
//! packets' coded data is not decoded, and the verdict says so.

use std::io::{Read, Seek, SeekFrom};

use crate::analysis::verdict::Verdict;

/// Whether the first bytes are a JP2 signature box or a codestream's SOC and SIZ.
pub fn starts_like(head: &[u8]) -> bool {
    head.starts_with(SIGNATURE) || head.starts_with(&[0xFF, 0x4F, 0xFF, 0x51])
}

const SIGNATURE: &[u8] = &[0, 0, 0, 0x0C, b'j', b'P', b' ', b' ', 0x0D, 0x0A, 0x87, 0x0A];
const MAX_TILE_PARTS: u64 = 1 << 20;

pub fn check<R: Read + Seek>(r: R, size: u64) -> Verdict {
    let mut file = Bytes { r, size };
    let found = if size >= 12 && file.at(0, 12).is_ok_and(|h| h == SIGNATURE) {
        boxes(&mut file)
    } else {
        codestream(&mut file, 0, size)
    };
    match found {
        Ok(what) => Verdict::Limited(format!("{what}; the packets' coded data was not decoded")),
        Err(why) => Verdict::Invalid(why),
    }
}

type Fail = String;

struct Bytes<R> {
    r: R,
    size: u64,
}

impl<R: Read + Seek> Bytes<R> {
    fn at(&mut self, at: u64, len: usize) -> Result<Vec<u8>, Fail> {
        if at.saturating_add(len as u64) > self.size {
            return Err(format!("it ends at byte {} where {len} more bytes at {at} are needed", self.size));
        }
        let mut buf = vec![0; len];
        self.r.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
        self.r.read_exact(&mut buf).map_err(|e| e.to_string())?;
        Ok(buf)
    }
    fn u16(&mut self, at: u64) -> Result<u16, Fail> {
        let b = self.at(at, 2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, at: u64) -> Result<u32, Fail> {
        let b = self.at(at, 4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// The JP2 boxes in order, then the codestream in its box.
fn boxes<R: Read + Seek>(f: &mut Bytes<R>) -> Result<String, Fail> {
    let mut at = 0u64;
    let mut order: Vec<[u8; 4]> = Vec::new();
    let mut said = None;
    while at < f.size {
        let head = f.at(at, 8).map_err(|_| format!("a box header at byte {at} is cut short"))?;
        let mut len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as u64;
        let kind: [u8; 4] = [head[4], head[5], head[6], head[7]];
        let mut content = at + 8;
        if len == 1 {
            let b = f.at(at + 8, 8)?;
            len = u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            content += 8;
        } else if len == 0 {
            len = f.size - at;
        }
        let name = String::from_utf8_lossy(&kind).into_owned();
        if len < content - at || at.saturating_add(len) > f.size {
            return Err(format!("the '{name}' box at byte {at} declares {len} bytes, past the end of the file"));
        }
        let end = at + len;
        match &kind {
            b"ftyp" if order.len() != 1 => return Err("the file type box does not follow the signature".into()),
            b"jp2h" => {
                let ihdr = f.at(content, 8)?;
                if &ihdr[4..] != b"ihdr" {
                    return Err("the JP2 header box does not start with its image header".into());
                }
                let height = f.u32(content + 8)?;
                let width = f.u32(content + 12)?;
                let components = f.u16(content + 16)?;
                if width == 0 || height == 0 || components == 0 {
                    return Err(format!("its image header says {width} x {height} with {components} components"));
                }
            }
            b"jp2c" => {
                if !order.iter().any(|k| k == b"jp2h") {
                    return Err("the codestream box comes before the JP2 header box".into());
                }
                if said.is_none() {
                    said = Some(codestream(f, content, end)?);
                }
            }
            _ => {}
        }
        if order.is_empty() && &kind != b"jP  " {
            return Err("the first box is not the JP2 signature".into());
        }
        order.push(kind);
        at = end;
    }
    if !order.iter().any(|k| k == b"ftyp") {
        return Err("there is no file type box".into());
    }
    said.ok_or_else(|| "there is no contiguous codestream box (jp2c)".into())
        .map(|s| format!("the JP2 boxes ({}) and {s}", order.len()))
}

/// A codestream from `start` to `end`.
fn codestream<R: Read + Seek>(f: &mut Bytes<R>, start: u64, end: u64) -> Result<String, Fail> {
    if f.u16(start)? != 0xFF4F {
        return Err("the codestream does not start with SOC".into());
    }
    if f.u16(start + 2)? != 0xFF51 {
        return Err("the codestream's SOC is not followed by SIZ".into());
    }
    let lsiz = f.u16(start + 4)? as u64;
    let siz = f.at(start + 6, 36)?;
    let word = |i: usize| u32::from_be_bytes([siz[i], siz[i + 1], siz[i + 2], siz[i + 3]]) as u64;
    let (x, y, xo, yo, xt, yt, xto, yto) =
        (word(2), word(6), word(10), word(14), word(18), word(22), word(26), word(30));
    let components = u16::from_be_bytes([siz[34], siz[35]]) as u64;
    if components == 0 || components > 16384 || lsiz != 38 + 3 * components {
        return Err(format!("its SIZ marker holds {components} components in {lsiz} bytes"));
    }
    if x <= xo || y <= yo || xt == 0 || yt == 0 || xto > xo || yto > yo || xto + xt <= xo || yto + yt <= yo {
        return Err(format!(
            "its SIZ sizes do not fit together: image {x} x {y} from ({xo}, {yo}), tiles {xt} x {yt} from ({xto}, {yto})"
        ));
    }
    let sampling = f.at(start + 6 + 36, 3 * components as usize)?;
    if sampling.chunks(3).any(|c| c[1] == 0 || c[2] == 0 || (c[0] & 0x7F) > 37) {
        return Err("a component's depth or sampling in SIZ is out of range".into());
    }
    let tiles = x.saturating_sub(xto).div_ceil(xt) * y.saturating_sub(yto).div_ceil(yt);

    // The main header, up to the first tile-part.
    let mut at = start + 4 + lsiz;
    let (mut cod, mut qcd) = (false, false);
    loop {
        let marker = f.u16(at)?;
        if marker == 0xFF90 {
            break;
        }
        if marker >> 8 != 0xFF {
            return Err(format!("the main header has no marker at byte {at}"));
        }
        let len = f.u16(at + 2)? as u64;
        if len < 2 {
            return Err(format!("the marker {marker:04X} at byte {at} declares a length of {len}"));
        }
        match marker {
            0xFF52 => {
                cod = true;
                let c = f.at(at + 4, 10.min(len as usize - 2))?;
                if c.len() < 10 {
                    return Err("its COD marker is too short".into());
                }
                let (progression, layers, levels, cbw, cbh) =
                    (c[1], u16::from_be_bytes([c[2], c[3]]), c[5], c[6], c[7]);
                if progression > 4 || layers == 0 || levels > 32 || cbw > 8 || cbh > 8 || cbw + cbh > 8 {
                    return Err(format!(
                        "its COD marker is out of range (progression {progression}, {layers} layers, \
                         {levels} levels, code-blocks 2^{} x 2^{})",
                        cbw + 2,
                        cbh + 2
                    ));
                }
            }
            0xFF5C => qcd = true,
            0xFF93 | 0xFFD9 => return Err(format!("the main header holds the marker {marker:04X} before any tile")),
            _ => {}
        }
        at += 2 + len;
        if at >= end {
            return Err("the main header runs to the end: no tile follows".into());
        }
    }
    if !cod || !qcd {
        return Err(format!("its main header lacks {}", if cod { "QCD" } else { "COD" }));
    }

    // Tile-parts end to end, then EOC.
    let mut parts_of = std::collections::HashMap::<u64, (u64, u64)>::new();
    let mut parts = 0u64;
    loop {
        let marker = f.u16(at).map_err(|_| format!("the codestream ends at byte {at} without EOC"))?;
        if marker == 0xFFD9 {
            break;
        }
        if at + 2 >= end {
            return Err(format!("the codestream does not end with EOC (its last bytes are {marker:04X})"));
        }
        if marker != 0xFF90 {
            return Err(format!("a tile-part should start at byte {at}, but there is {marker:04X}"));
        }
        parts += 1;
        if parts > MAX_TILE_PARTS {
            return Err(format!("more than {MAX_TILE_PARTS} tile-parts"));
        }
        let sot = f.at(at + 2, 10)?;
        let (lsot, tile) = (u16::from_be_bytes([sot[0], sot[1]]), u16::from_be_bytes([sot[2], sot[3]]) as u64);
        let psot = u32::from_be_bytes([sot[4], sot[5], sot[6], sot[7]]) as u64;
        let (part, of) = (sot[8] as u64, sot[9] as u64);
        if lsot != 10 || tile >= tiles {
            return Err(format!("the tile-part at byte {at} names tile {tile} of {tiles} (Lsot {lsot})"));
        }
        let seen = parts_of.entry(tile).or_insert((0, 0));
        if part != seen.0 {
            return Err(format!("tile {tile}'s part at byte {at} is numbered {part}, where {} came before", seen.0));
        }
        if of != 0 && part >= of {
            return Err(format!(
                "tile {tile}'s part at byte {at} is numbered {part} of {of} (TPsot must be below TNsot)"
            ));
        }
        if seen.1 != 0 && of != 0 && of != seen.1 {
            return Err(format!("tile {tile}'s parts disagree on how many there are ({} and {of})", seen.1));
        }
        seen.0 += 1;
        if of != 0 {
            seen.1 = of;
        }
        // Its header's markers, up to SOD.
        let mut m = at + 12;
        loop {
            let marker = f.u16(m)?;
            if marker == 0xFF93 {
                break;
            }
            if marker >> 8 != 0xFF || marker == 0xFF90 || marker == 0xFFD9 {
                return Err(format!("tile {tile}'s part at byte {at} has no SOD"));
            }
            m += 2 + f.u16(m + 2)? as u64;
            if m >= end {
                return Err(format!("tile {tile}'s part at byte {at} has no SOD"));
            }
        }
        if psot == 0 {
            // The last tile-part runs to the EOC that ends the codestream.
            if f.u16(end - 2)? != 0xFFD9 {
                return Err("the codestream does not end with EOC".into());
            }
            at = end - 2;
            break;
        }
        if psot < 14 || at + psot > end {
            return Err(format!("tile {tile}'s part at byte {at} declares {psot} bytes, past the codestream's end"));
        }
        at += psot;
    }
    if at + 2 != end {
        return Err(format!("EOC at byte {at} is not where the codestream ends ({end})"));
    }
    if let Some(missing) = (0..tiles).find(|t| !parts_of.contains_key(t)) {
        return Err(format!("tile {missing} of {tiles} has no tile-part"));
    }
    if let Some((tile, (n, of))) = parts_of.iter().find(|(_, (n, of))| *of != 0 && n != of) {
        return Err(format!("tile {tile} has {n} of its {of} parts"));
    }
    Ok(format!("the codestream's main header (SIZ, COD, QCD), its {parts} tile-parts for {tiles} tiles and EOC"))
}
