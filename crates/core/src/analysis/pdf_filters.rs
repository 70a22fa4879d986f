//! A PDF stream's filters undone, as a reader undoes them before it draws: Flate (to the end
//! of its zlib stream, checksum included), LZW (with /EarlyChange), ASCII85, ASCIIHex and
//! RunLength. Image codecs (DCT, JPX) and the ones no reader here decodes (CCITT fax, JBIG2,
//! Crypt) are named instead, so the caller checks or reports them. Every output is bounded.

/// What undoing one filter gave.
pub enum Undone {
    Bytes(Vec<u8>),
    /// The data is an image in this codec: DCT (a JPEG) or JPX (JPEG 2000).
    Image(&'static str),
    /// A filter this check does not undo, by its name.
    NotUndone(String),
}

/// Undoes the filter `name` on `data`, giving at most `max` bytes.
pub fn undo(name: &[u8], params: Option<&EarlyChange>, data: &[u8], max: usize) -> Result<Undone, String> {
    let out = match name {
        b"FlateDecode" | b"Fl" => inflate(data, max)?,
        b"LZWDecode" | b"LZW" => lzw(data, params.is_none_or(|p| p.0), max)?,
        b"ASCII85Decode" | b"A85" => ascii85(data, max)?,
        b"ASCIIHexDecode" | b"AHx" => ascii_hex(data, max)?,
        b"RunLengthDecode" | b"RL" => run_length(data, max)?,
        b"DCTDecode" | b"DCT" => return Ok(Undone::Image("DCT")),
        b"JPXDecode" => return Ok(Undone::Image("JPX")),
        other => return Ok(Undone::NotUndone(String::from_utf8_lossy(other).into_owned())),
    };
    Ok(Undone::Bytes(out))
}

/// LZW's /EarlyChange (1 unless the stream's parameters say 0).
pub struct EarlyChange(pub bool);

fn too_long(max: usize) -> String {
    format!("it decodes to more than {} MiB", max >> 20)
}

fn inflate(data: &[u8], max: usize) -> Result<Vec<u8>, String> {
    let mut z = flate2::Decompress::new(true);
    let mut out = Vec::with_capacity(data.len().min(max).saturating_mul(2).min(max));
    loop {
        if out.len() == out.capacity() {
            if out.len() >= max {
                return Err(too_long(max));
            }
            out.reserve((out.len().max(4096)).min(max - out.len()));
        }
        let before_in = z.total_in();
        let before_out = z.total_out();
        let rest = &data[z.total_in() as usize..];
        let status =
            z.decompress_vec(rest, &mut out, flate2::FlushDecompress::None).map_err(|e| match e.to_string() {
                // A checksum that disagrees is worth saying; miniz's other words are not.
                e if e.contains("data check") => "its Flate data fails its Adler-32 checksum".to_string(),
                _ => "its Flate data is corrupt".to_string(),
            })?;
        match status {
            flate2::Status::StreamEnd => return Ok(out),
            _ if z.total_in() == before_in && z.total_out() == before_out => {
                return Err(if z.total_in() as usize >= data.len() {
                    "its Flate data ends before the end of its zlib stream".into()
                } else {
                    "its Flate data is corrupt".into()
                });
            }
            _ => {}
        }
    }
}

fn lzw(data: &[u8], early_change: bool, max: usize) -> Result<Vec<u8>, String> {
    const CLEAR: usize = 256;
    const EOD: usize = 257;
    let mut table: Vec<(Option<usize>, u8)> = (0..=255u8).map(|b| (None, b)).collect();
    table.push((None, 0));
    table.push((None, 0));
    let entry = |table: &[(Option<usize>, u8)], mut code: usize, out: &mut Vec<u8>| -> u8 {
        let start = out.len();
        loop {
            let (prev, byte) = table[code];
            out.push(byte);
            match prev {
                Some(p) => code = p,
                None => break,
            }
        }
        out[start..].reverse();
        out[start]
    };
    let mut out = Vec::new();
    let (mut bits, mut acc, mut have) = (9u32, 0u32, 0u32);
    let mut prev: Option<usize> = None;
    let mut bytes = data.iter();
    loop {
        while have < bits {
            match bytes.next() {
                Some(b) => {
                    acc = (acc << 8) | *b as u32;
                    have += 8;
                }
                // A stream may end without its EOD code; readers accept that.
                None => return Ok(out),
            }
        }
        let code = ((acc >> (have - bits)) & ((1 << bits) - 1)) as usize;
        have -= bits;
        match code {
            CLEAR => {
                table.truncate(258);
                bits = 9;
                prev = None;
                continue;
            }
            EOD => return Ok(out),
            _ => {}
        }
        // Past 4,096 entries the table stops growing until a clear code.
        let room = table.len() < 4096;
        if code < table.len() {
            let first = entry(&table, code, &mut out);
            if let (Some(p), true) = (prev, room) {
                table.push((Some(p), first));
            }
        } else if code == table.len() && room {
            let Some(p) = prev else { return Err("its LZW data starts with an undefined code".into()) };
            let mut head = Vec::new();
            let first = entry(&table, p, &mut head);
            table.push((Some(p), first));
            entry(&table, code, &mut out);
        } else {
            return Err(format!("its LZW data has the code {code}, past its table ({} entries)", table.len()));
        }
        if out.len() > max {
            return Err(too_long(max));
        }
        prev = Some(code);
        let next = table.len() + usize::from(early_change);
        bits = match next {
            n if n > 2048 => 12,
            n if n > 1024 => 11,
            n if n > 512 => 10,
            _ => 9,
        };
    }
}

fn ascii85(data: &[u8], max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut group = [0u32; 5];
    let mut n = 0;
    let mut ended = false;
    let mut i = 0;
    while i < data.len() {
        let c = data[i];
        i += 1;
        match c {
            b'~' => {
                if data.get(i) != Some(&b'>') {
                    return Err("its ASCII85 data has '~' not followed by '>'".into());
                }
                ended = true;
                break;
            }
            b'z' if n == 0 => out.extend_from_slice(&[0; 4]),
            b'!'..=b'u' => {
                group[n] = (c - b'!') as u32;
                n += 1;
                if n == 5 {
                    let v = group.iter().try_fold(0u32, |v, d| v.checked_mul(85).and_then(|v| v.checked_add(*d)));
                    let v = v.ok_or("its ASCII85 data has a group past 2^32")?;
                    out.extend_from_slice(&v.to_be_bytes());
                    n = 0;
                }
            }
            c if c.is_ascii_whitespace() || c == 0 => {}
            other => return Err(format!("its ASCII85 data holds the byte {other:#04x}")),
        }
        if out.len() > max {
            return Err(too_long(max));
        }
    }
    if !ended {
        return Err("its ASCII85 data has no '~>' end".into());
    }
    match n {
        0 => {}
        1 => return Err("its ASCII85 data ends with a group of one character".into()),
        _ => {
            for d in group.iter_mut().skip(n) {
                *d = 84;
            }
            let v = group.iter().fold(0u64, |v, d| v * 85 + *d as u64);
            if v > u32::MAX as u64 {
                return Err("its ASCII85 data has a group past 2^32".into());
            }
            out.extend_from_slice(&(v as u32).to_be_bytes()[..n - 1]);
        }
    }
    Ok(out)
}

fn ascii_hex(data: &[u8], max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut half: Option<u8> = None;
    for &c in data {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            b'>' => {
                if let Some(h) = half {
                    out.push(h << 4);
                }
                return Ok(out);
            }
            c if c.is_ascii_whitespace() || c == 0 => continue,
            other => return Err(format!("its ASCIIHex data holds the byte {other:#04x}")),
        };
        match half.take() {
            Some(h) => out.push(h << 4 | v),
            None => half = Some(v),
        }
        if out.len() > max {
            return Err(too_long(max));
        }
    }
    Err("its ASCIIHex data has no '>' end".into())
}

fn run_length(data: &[u8], max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut r = data;
    loop {
        let Some((&len, rest)) = r.split_first() else {
            // Without its end-of-data byte: readers take what is there.
            return Ok(out);
        };
        r = rest;
        match len {
            128 => return Ok(out),
            0..=127 => {
                let n = len as usize + 1;
                let Some(run) = r.get(..n) else {
                    return Err("its RunLength data ends inside a literal run".into());
                };
                out.extend_from_slice(run);
                r = &r[n..];
            }
            _ => {
                let Some((&b, rest)) = r.split_first() else {
                    return Err("its RunLength data ends inside a repeated run".into());
                };
                out.extend(std::iter::repeat_n(b, 257 - len as usize));
                r = rest;
            }
        }
        if out.len() > max {
            return Err(too_long(max));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(u: Undone) -> Vec<u8> {
        match u {
            Undone::Bytes(b) => b,
            _ => panic!("bytes expected"),
        }
    }

    #[test]
    fn each_filter_undoes_what_its_encoder_made_and_refuses_damage() {
        let text = b"BT /F1 12 Tf 72 712 Td (A page of words) Tj ET\n".repeat(50);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut z, &text).unwrap();
        let flated = z.finish().unwrap();
        assert_eq!(bytes(undo(b"FlateDecode", None, &flated, 1 << 20).unwrap()), text);
        assert!(undo(b"FlateDecode", None, &flated[..flated.len() / 2], 1 << 20).is_err(), "cut short");
        let mut bad = flated.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(undo(b"FlateDecode", None, &bad, 1 << 20).is_err(), "a wrong Adler-32");
        let mut bad = flated.clone();
        bad[10] ^= 0x55;
        assert!(undo(b"FlateDecode", None, &bad, 1 << 20).is_err(), "corrupt in the middle");
        assert!(undo(b"FlateDecode", None, &flated, 100).is_err(), "past the bound");

        assert_eq!(bytes(undo(b"ASCIIHexDecode", None, b"48 65 6c6C 6f7>", 100).unwrap()), b"Hello\x70");
        assert!(undo(b"ASCIIHexDecode", None, b"48 6G>", 100).is_err());
        assert!(undo(b"ASCIIHexDecode", None, b"4865", 100).is_err(), "no end");
        // "Man " and "sure" in ASCII85, and a zero group.
        assert_eq!(bytes(undo(b"ASCII85Decode", None, b"9jqo^F*2M7z~>", 100).unwrap()), b"Man sure\0\0\0\0");
        assert_eq!(bytes(undo(b"A85", None, b"9jqo^F*2L~>", 100).unwrap()), b"Man sur");
        assert!(undo(b"A85", None, b"9jqo^{~>", 100).is_err());
        assert!(undo(b"A85", None, b"9jqo^", 100).is_err(), "no end");
        assert_eq!(
            bytes(undo(b"RunLengthDecode", None, &[2, b'a', b'b', b'c', 254, b'x', 128], 100).unwrap()),
            b"abcxxx"
        );
        assert!(undo(b"RL", None, &[5, b'a'], 100).is_err());
        // LZW: the PDF reference's example, "-----A---B" with EarlyChange 1.
        let lzw = [0x80, 0x0B, 0x60, 0x50, 0x22, 0x0C, 0x0C, 0x85, 0x01];
        assert_eq!(bytes(undo(b"LZWDecode", None, &lzw, 100).unwrap()), b"-----A---B");
        assert!(undo(b"LZWDecode", None, &[0xff, 0xff, 0xff], 100).is_err(), "an undefined code");
        assert!(matches!(undo(b"DCTDecode", None, b"", 1).unwrap(), Undone::Image("DCT")));
        assert!(matches!(undo(b"JBIG2Decode", None, b"", 1).unwrap(), Undone::NotUndone(n) if n == "JBIG2Decode"));
    }
}
