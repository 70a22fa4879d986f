//! DROID's byte-pattern syntax, as it appears in signature files, turned into byte regexes:
//! hex bytes (`4D5A`), quoted text (`'Word.Document.'`), any byte (`??`), gaps (`{4}`,
//! `{0-12}`, `{3-*}`, `*`), ranges of one or more bytes (`[30:37]`, `['6'-'7']`,
//! `[0000:1000]`, compared as big-endian numbers), bit masks (`[&01]`: these bits all set;
//! `[~01]`: any of them set), negations of each (`[!00]`, `[!00:1F]`, `[!&01]`) and
//! alternatives (`(0D0A|0A)`).

use super::error::SignatureError;

use std::fmt::Write;

/// Gaps longer than this become unbounded: signatures are matched within a window of the
/// file anyway, and huge counted repetitions would bloat the automaton.
pub const MAX_COUNTED_GAP: u64 = 1024;

/// A gap of `min..=max` bytes (`max` None: unbounded) as a regex fragment.
pub fn gap(min: u64, max: Option<u64>) -> String {
    match max {
        Some(0) if min == 0 => String::new(),
        Some(max) if max <= MAX_COUNTED_GAP && min <= max => {
            if min == max {
                format!("(?s:.){{{min}}}")
            } else {
                format!("(?s:.){{{min},{max}}}")
            }
        }
        _ if min <= MAX_COUNTED_GAP && min > 0 => format!("(?s:.){{{min},}}?"),
        _ => "(?s:.)*?".to_string(),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }

    fn err(&self, what: &'static str) -> SignatureError {
        SignatureError::Pattern { what, at: self.i, pattern: String::from_utf8_lossy(self.s).into_owned() }
    }

    fn hex_byte(&mut self) -> Result<u8, SignatureError> {
        self.skip_ws();
        let hi = self.s.get(self.i).copied().and_then(hex_val).ok_or_else(|| self.err("a hex digit expected"))?;
        self.i += 1;
        self.skip_ws();
        let lo =
            self.s.get(self.i).copied().and_then(hex_val).ok_or_else(|| self.err("a second hex digit expected"))?;
        self.i += 1;
        Ok(hi << 4 | lo)
    }

    fn quoted(&mut self) -> Result<Vec<u8>, SignatureError> {
        self.i += 1; // opening quote
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i] != b'\'' {
            self.i += 1;
        }
        if self.i >= self.s.len() {
            return Err(self.err("an unterminated quoted string"));
        }
        let text = self.s[start..self.i].to_vec();
        self.i += 1;
        Ok(text)
    }

    /// The bytes of one value inside brackets: a quoted string, or hex bytes up to `:`,
    /// `-` or `]`.
    fn values(&mut self) -> Result<Vec<u8>, SignatureError> {
        if self.peek() == Some(b'\'') {
            return self.quoted();
        }
        let mut out = Vec::new();
        while self.peek().is_some_and(|c| !matches!(c, b':' | b'-' | b']')) {
            out.push(self.hex_byte()?);
        }
        if out.is_empty() {
            return Err(self.err("a value expected"));
        }
        Ok(out)
    }

    /// What is between `[` (and its `!`) and `]`, as a regex fragment.
    fn bracket(&mut self, negate: bool) -> Result<String, SignatureError> {
        if let Some(op @ (b'&' | b'~')) = self.peek() {
            self.i += 1;
            let mask = self.values()?;
            return Ok(masked(&mask, op == b'&', negate));
        }
        let first = self.values()?;
        if let Some(b':' | b'-') = self.peek() {
            self.i += 1;
            let last = self.values()?;
            if last.len() != first.len() {
                return Err(self.err("a range's two ends of different lengths"));
            }
            let (lo, hi) = if first <= last { (first, last) } else { (last, first) };
            return Ok(if negate { outside(&lo, &hi) } else { within(&lo, &hi) });
        }
        Ok(match (negate, first.as_slice()) {
            (false, bytes) => bytes.iter().map(|b| format!("\\x{b:02x}")).collect(),
            (true, [b]) => format!("[^\\x{b:02x}]"),
            // [!xxyy…]: not that sequence: any sequence of its length but it.
            (true, bytes) => outside_value(bytes),
        })
    }

    fn number(&mut self) -> Result<u64, SignatureError> {
        self.skip_ws();
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or("").parse().map_err(|_| self.err("a number expected"))
    }

    /// The sequence up to `)` or `|` (inside alternatives) or the end.
    fn sequence(&mut self, out: &mut String) -> Result<(), SignatureError> {
        while let Some(c) = self.peek() {
            match c {
                b')' | b'|' => return Ok(()),
                b'\'' => {
                    for b in self.quoted()? {
                        write!(out, "\\x{b:02x}").unwrap();
                    }
                }
                b'?' => {
                    self.i += 1;
                    if self.s.get(self.i) == Some(&b'?') {
                        self.i += 1;
                    }
                    out.push_str("(?s:.)");
                }
                b'*' => {
                    self.i += 1;
                    out.push_str("(?s:.)*?");
                }
                b'{' => {
                    self.i += 1;
                    let min = self.number()?;
                    let max = match self.peek() {
                        Some(b'-') => {
                            self.i += 1;
                            if self.peek() == Some(b'*') {
                                self.i += 1;
                                None
                            } else {
                                Some(self.number()?)
                            }
                        }
                        _ => Some(min),
                    };
                    if self.peek() != Some(b'}') {
                        return Err(self.err("'}' expected"));
                    }
                    self.i += 1;
                    out.push_str(&gap(min, max));
                }
                b'[' => {
                    self.i += 1;
                    let negate = self.peek() == Some(b'!');
                    if negate {
                        self.i += 1;
                    }
                    out.push_str(&self.bracket(negate)?);
                    if self.peek() != Some(b']') {
                        return Err(self.err("']' expected"));
                    }
                    self.i += 1;
                }
                b'(' => {
                    self.i += 1;
                    out.push_str("(?:");
                    loop {
                        self.sequence(out)?;
                        match self.peek() {
                            Some(b'|') => {
                                self.i += 1;
                                out.push('|');
                            }
                            Some(b')') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err("')' expected")),
                        }
                    }
                    out.push(')');
                }
                _ => {
                    let b = self.hex_byte()?;
                    write!(out, "\\x{b:02x}").unwrap();
                }
            }
        }
        Ok(())
    }
}

/// A class of the bytes for which `keep` holds.
fn class(keep: impl Fn(u8) -> bool) -> String {
    let bytes: Vec<u8> = (0..=255u8).filter(|b| keep(*b)).collect();
    if bytes.is_empty() {
        // Nothing matches: a class no byte is in.
        return "[^\\x00-\\xff]".into();
    }
    let mut out = String::from("[");
    let mut i = 0;
    while i < bytes.len() {
        let start = bytes[i];
        while i + 1 < bytes.len() && bytes[i + 1] == bytes[i] + 1 {
            i += 1;
        }
        write!(out, "\\x{start:02x}-\\x{:02x}", bytes[i]).unwrap();
        i += 1;
    }
    out.push(']');
    out
}

/// Bytes under a mask: `all` (`&`) — every bit of the mask set in each byte; else (`~`) —
/// some bit of the mask set in some byte. Negated: the opposite.
fn masked(mask: &[u8], all: bool, negate: bool) -> String {
    let each_all = |m: u8| class(move |b| b & m == m);
    let each_not_all = |m: u8| class(move |b| b & m != m);
    let each_any = |m: u8| class(move |b| b & m != 0);
    let each_none = |m: u8| class(move |b| b & m == 0);
    let any = "(?s:.)";
    // A condition on every byte is their concatenation; on some byte, an alternation over
    // which one.
    let every = |f: &dyn Fn(u8) -> String| mask.iter().map(|m| f(*m)).collect::<String>();
    let some = |f: &dyn Fn(u8) -> String| {
        let alts: Vec<String> = (0..mask.len())
            .map(|k| (0..mask.len()).map(|j| if j == k { f(mask[j]) } else { any.to_string() }).collect())
            .collect();
        format!("(?:{})", alts.join("|"))
    };
    match (all, negate) {
        (true, false) => every(&each_all),
        (true, true) => some(&each_not_all),
        (false, false) => some(&each_any),
        (false, true) => every(&each_none),
    }
}

fn byte_range(lo: u8, hi: u8) -> String {
    if lo == hi {
        format!("\\x{lo:02x}")
    } else {
        format!("[\\x{lo:02x}-\\x{hi:02x}]")
    }
}

/// Sequences from `lo` to `hi` (equal lengths, `lo <= hi`, big-endian), as a regex.
fn within(lo: &[u8], hi: &[u8]) -> String {
    if lo.len() == 1 {
        return byte_range(lo[0], hi[0]);
    }
    // Every sequence of the length: said once, or the two branches below would each make
    // two more, and a long value would grow its regex as 2^n (found by fuzzing).
    if lo.iter().all(|&b| b == 0) && hi.iter().all(|&b| b == 0xff) {
        return format!("(?s:.){{{}}}", lo.len());
    }
    let rest = lo.len() - 1;
    if lo[0] == hi[0] {
        return format!("\\x{:02x}{}", lo[0], within(&lo[1..], &hi[1..]));
    }
    let mut alts = vec![format!("\\x{:02x}{}", lo[0], within(&lo[1..], &vec![0xff; rest]))];
    if hi[0] - lo[0] > 1 {
        alts.push(format!("{}(?s:.){{{rest}}}", byte_range(lo[0] + 1, hi[0] - 1)));
    }
    alts.push(format!("\\x{:02x}{}", hi[0], within(&vec![0; rest], &hi[1..])));
    format!("(?:{})", alts.join("|"))
}

/// `bytes` plus (`up`) or minus one, as a big-endian number; None past the ends.
fn step(bytes: &[u8], up: bool) -> Option<Vec<u8>> {
    let mut out = bytes.to_vec();
    for b in out.iter_mut().rev() {
        if up && *b < 0xff {
            *b += 1;
            return Some(out);
        }
        if !up && *b > 0 {
            *b -= 1;
            return Some(out);
        }
        *b = if up { 0 } else { 0xff };
    }
    None
}

/// Sequences of `lo`'s length outside `lo..=hi`.
fn outside(lo: &[u8], hi: &[u8]) -> String {
    let n = lo.len();
    let mut alts = Vec::new();
    if let Some(below) = step(lo, false) {
        alts.push(within(&vec![0; n], &below));
    }
    if let Some(above) = step(hi, true) {
        alts.push(within(&above, &vec![0xff; n]));
    }
    if alts.is_empty() {
        return "[^\\x00-\\xff]".into();
    }
    format!("(?:{})", alts.join("|"))
}

/// Sequences of `bytes`'s length other than `bytes`.
fn outside_value(bytes: &[u8]) -> String {
    outside(bytes, bytes)
}

/// A DROID pattern as a regex fragment (for a bytes regex in `(?-u)` mode).
pub fn to_regex(pattern: &str) -> Result<String, SignatureError> {
    let mut p = Parser { s: pattern.as_bytes(), i: 0 };
    let mut out = String::new();
    p.sequence(&mut out)?;
    if p.peek().is_some() {
        return Err(p.err("unexpected character"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, haystack: &[u8]) -> bool {
        let re = regex::bytes::Regex::new(&format!("(?-u)\\A(?:{})", to_regex(pattern).unwrap())).unwrap();
        re.is_match(haystack)
    }

    #[test]
    fn droid_syntax() {
        assert!(matches("4D5A", b"MZ"));
        assert!(matches("10 00 00 00 'Word.Document.' ['6'-'7'] 00", b"\x10\0\0\0Word.Document.7\0"));
        assert!(!matches("10 00 00 00 'Word.Document.' ['6'-'7'] 00", b"\x10\0\0\0Word.Document.8\0"));
        assert!(matches("[30:37][20:37]", b"5 "));
        assert!(matches("[!00]41", b"\x01A"));
        assert!(!matches("[!00]41", b"\x00A"));
        assert!(matches("25504446{0-4}2D", b"%PDF..-"));
        assert!(matches("(0D0A|0A)41", b"\nA"));
        assert!(matches("41??43", b"ABC"));
        assert!(matches("41*43", b"A-long-way-C"));
        assert!(matches("41{3-*}43", b"A123456C"));
        assert!(!matches("41{3-*}43", b"A12C"));
        assert!(to_regex("4G").is_err());
    }

    #[test]
    fn multi_byte_ranges_compare_as_numbers() {
        for (bytes, inside) in [
            (&b"\x00\x00"[..], true),
            (b"\x0f\xff", true),
            (b"\x10\x00", true),
            (b"\x10\x01", false),
            (b"\xff\x00", false),
        ] {
            assert_eq!(matches("[0000:1000]", bytes), inside, "{bytes:?}");
            assert_eq!(matches("[!0000:1000]", bytes), !inside, "{bytes:?}");
        }
        assert!(matches("[0105:0302]", b"\x02\x00") && matches("[0105:0302]", b"\x01\x05"));
        assert!(!matches("[0105:0302]", b"\x01\x04") && !matches("[0105:0302]", b"\x03\x03"));
    }

    #[test]
    fn masks_test_bits() {
        assert!(matches("[&01]", b"\x03") && !matches("[&01]", b"\x02"));
        assert!(matches("[!&01]00", b"\x02\x00") && !matches("[!&01]00", b"\x01\x00"));
        assert!(matches("[&01][&01]", b"\x01\xff") && !matches("[&01][&01]", b"\x01\xfe"));
        assert!(matches("[~0C]", b"\x04") && !matches("[~0C]", b"\x03"));
        assert!(matches("[!~0C]", b"\x03"));
        assert!(matches("[&0101]", b"\x01\x01") && !matches("[&0101]", b"\x01\x00"));
        assert!(matches("[!&0101]", b"\x01\x00"));
        assert!(matches("[!4142]", b"AC") && !matches("[!4142]", b"AB"), "not that sequence, exactly");
    }

    /// A long negated value once made a gigabyte of regex (fuzzing found it): its regex now
    /// grows with the square of its length at most.
    #[test]
    fn long_ranges_compile_small() {
        let value = "'FF\u{12}\0\0\0\0\0\0\0!\u{1}b\u{2}E@{\0\08F!'";
        for pattern in [format!("[!{value}]"), "[!00112233445566778899AABBCCDDEEFF0011223344556677]".into()] {
            let re = to_regex(&pattern).unwrap_or_default();
            assert!(re.len() < 200_000, "{pattern}: {} bytes of regex", re.len());
        }
        assert!(matches("[!00112233445566778899AABBCCDDEEFF]", &[0x00; 16]));
        assert!(!matches(
            "[!00112233445566778899AABBCCDDEEFF]",
            b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff"
        ));
    }
}
