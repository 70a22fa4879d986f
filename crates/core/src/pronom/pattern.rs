//! DROID's byte-pattern syntax, as it appears in signature files, turned into byte regexes:
//! hex bytes (`4D5A`), quoted text (`'Word.Document.'`), any byte (`??`), gaps (`{4}`,
//! `{0-12}`, `{3-*}`, `*`), ranges (`[30:37]`, `['6'-'7']`), negations (`[!00]`,
//! `[!00:1F]`) and alternatives (`(0D0A|0A)`).

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

    fn err(&self, what: &str) -> String {
        format!("{what} at {} in {:?}", self.i, String::from_utf8_lossy(self.s))
    }

    fn hex_byte(&mut self) -> Result<u8, String> {
        self.skip_ws();
        let hi = self.s.get(self.i).copied().and_then(hex_val).ok_or_else(|| self.err("a hex digit expected"))?;
        self.i += 1;
        self.skip_ws();
        let lo =
            self.s.get(self.i).copied().and_then(hex_val).ok_or_else(|| self.err("a second hex digit expected"))?;
        self.i += 1;
        Ok(hi << 4 | lo)
    }

    fn quoted(&mut self) -> Result<Vec<u8>, String> {
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

    /// One byte value inside brackets: hex or a quoted character.
    fn range_value(&mut self) -> Result<u8, String> {
        if self.peek() == Some(b'\'') {
            let q = self.quoted()?;
            q.first().copied().ok_or_else(|| self.err("an empty quoted character"))
        } else {
            self.hex_byte()
        }
    }

    fn number(&mut self) -> Result<u64, String> {
        self.skip_ws();
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or("").parse().map_err(|_| self.err("a number expected"))
    }

    /// The sequence up to `)` or `|` (inside alternatives) or the end.
    fn sequence(&mut self, out: &mut String) -> Result<(), String> {
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
                    let first = self.range_value()?;
                    match self.peek() {
                        Some(b':') | Some(b'-') => {
                            self.i += 1;
                            let last = self.range_value()?;
                            let (lo, hi) = (first.min(last), first.max(last));
                            write!(out, "[{}\\x{lo:02x}-\\x{hi:02x}]", if negate { "^" } else { "" }).unwrap();
                        }
                        _ => {
                            // [!xxyy…]: not that sequence. A regex cannot say "not this
                            // sequence" without look-around; the first byte is negated and
                            // the rest taken as any bytes, a close over-approximation.
                            let mut rest = 0;
                            while self.peek().is_some_and(|c| c != b']') {
                                self.hex_byte()?;
                                rest += 1;
                            }
                            write!(out, "[{}\\x{first:02x}]", if negate { "^" } else { "" }).unwrap();
                            if rest > 0 {
                                write!(out, "(?s:.){{{rest}}}").unwrap();
                            }
                        }
                    }
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

/// A DROID pattern as a regex fragment (for a bytes regex in `(?-u)` mode).
pub fn to_regex(pattern: &str) -> Result<String, String> {
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
}
