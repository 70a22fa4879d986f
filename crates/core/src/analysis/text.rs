//! Whether bytes are text, and in which encoding: what characterization records and what
//! identification calls plain text (`x-fmt/111`) when no signature or extension says more,
//! as siegfried's text matcher does.

/// `ascii`, `utf-8`, `utf-16le`/`utf-16be` (by byte-order mark) or `iso-8859` (8-bit text
/// whose upper half is printable), or None for binary: a NUL, a control character other
/// than tab, newline, carriage return, form feed and escape, or bytes no encoding reads.
pub fn text_encoding(sample: &[u8]) -> Option<&'static str> {
    if sample.starts_with(b"\xFF\xFE") {
        return Some("utf-16le");
    }
    if sample.starts_with(b"\xFE\xFF") {
        return Some("utf-16be");
    }
    if sample.iter().any(|&b| b == 0 || (b < 0x20 && !b"\t\n\r\x0c\x1b".contains(&b)) || b == 0x7F) {
        return None;
    }
    if sample.is_ascii() {
        return Some("ascii");
    }
    // A sample may end inside a character: tolerate an incomplete last sequence.
    match std::str::from_utf8(sample) {
        Ok(_) => Some("utf-8"),
        Err(e) if e.error_len().is_none() => Some("utf-8"),
        // Latin-1 and its kin: the C1 controls (0x80-0x9F) are not text there.
        Err(_) if !sample.iter().any(|&b| (0x80..0xA0).contains(&b)) => Some("iso-8859"),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_encodings() {
        assert_eq!(text_encoding(b"plain"), Some("ascii"));
        assert_eq!(text_encoding("café".as_bytes()), Some("utf-8"));
        assert_eq!(text_encoding(b"caf\xc3"), Some("utf-8"), "a sample cut inside a character");
        assert_eq!(text_encoding(b"caf\xe9 au lait"), Some("iso-8859"));
        assert_eq!(text_encoding(b"caf\x85 au lait"), None, "a C1 control is no Latin-1 text");
        assert_eq!(text_encoding(b"\xFF\xFEh\x00i\x00"), Some("utf-16le"));
        assert_eq!(text_encoding(b"\x00\x01"), None);
        assert_eq!(text_encoding(b"\x13\x37"), None);
    }
}
