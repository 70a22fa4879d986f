//! Just enough XML writing: escaping that is safe in text and attributes, and that drops
//! characters XML 1.0 cannot carry at all (they would make the document unreadable).

use std::borrow::Cow;

fn allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// Whether a byte may need escaping: markup, a control character, or the first byte of
/// U+FFFE and U+FFFF (and of every other character from U+F000, which are looked at then).
fn suspect(b: u8) -> bool {
    matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'' | 0xEF) || (b < b' ' && !matches!(b, b'\t' | b'\n' | b'\r'))
}

/// Escapes text for an element or a double-quoted attribute.
pub fn esc(s: &str) -> Cow<'_, str> {
    // Bytes, not characters: nearly every value is ASCII, and decoding characters was a
    // METS's hottest loop. Only a suspect byte is looked at more closely.
    let bytes = s.as_bytes();
    let Some(first) = bytes.iter().position(|&b| suspect(b)) else { return Cow::Borrowed(s) };
    let mut out = String::new();
    // Text from `plain` on is copied as it is when the next replacement is written.
    let mut plain = 0;
    let mut i = first;
    while i < bytes.len() {
        if !suspect(bytes[i]) {
            i += 1;
            continue;
        }
        let c = s[i..].chars().next().expect("a suspect byte starts a character");
        let replacement: Cow<'static, str> = match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&apos;".into(),
            c if allowed(c) => {
                i += c.len_utf8();
                continue;
            }
            c => format!("\u{FFFD}[U+{:04X}]", c as u32).into(),
        };
        if out.capacity() == 0 {
            out.reserve(s.len() + 16);
        }
        out.push_str(&s[plain..i]);
        out.push_str(&replacement);
        i += c.len_utf8();
        plain = i;
    }
    if plain == 0 {
        // Only characters that looked suspect and were not (U+F000 and up).
        return Cow::Borrowed(s);
    }
    out.push_str(&s[plain..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::esc;
    use std::borrow::Cow;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(esc("plain"), "plain");
        assert_eq!(esc("bell\u{7}"), "bell\u{FFFD}[U+0007]");
        assert_eq!(esc("tab\tline\r\n"), "tab\tline\r\n");
        assert_eq!(esc("not a character \u{FFFE}\u{FFFF}"), "not a character \u{FFFD}[U+FFFE]\u{FFFD}[U+FFFF]");
        assert!(matches!(esc("private use \u{F000} and \u{FFFD}"), Cow::Borrowed("private use \u{F000} and \u{FFFD}")));
        assert_eq!(esc("<\u{F000}>é&'\u{1}"), "&lt;\u{F000}&gt;é&amp;&apos;\u{FFFD}[U+0001]");
        assert_eq!(esc("ends with a quote\""), "ends with a quote&quot;");
    }

    /// Character by character, as the escaping was first written: the byte-wise one must
    /// give the same text for any string.
    fn by_characters(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                '&' => "&amp;".to_string(),
                '<' => "&lt;".to_string(),
                '>' => "&gt;".to_string(),
                '"' => "&quot;".to_string(),
                '\'' => "&apos;".to_string(),
                c if super::allowed(c) => c.to_string(),
                c => format!("\u{FFFD}[U+{:04X}]", c as u32),
            })
            .collect()
    }

    #[test]
    fn escapes_any_string_as_character_by_character() {
        let alphabet = [
            'a', ' ', '&', '<', '>', '"', '\'', '\t', '\u{0}', '\u{1F}', 'é', '\u{EFFF}', '\u{F000}', '\u{FFFD}',
            '\u{FFFE}', '\u{FFFF}', '😀',
        ];
        let mut rnd = 7u64;
        for _ in 0..5000 {
            rnd = rnd.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let len = (rnd >> 60) as usize;
            let text: String =
                (0..len).map(|k| alphabet[((rnd >> (k * 4 % 56)) as usize + k) % alphabet.len()]).collect();
            assert_eq!(esc(&text), by_characters(&text), "{text:?}");
        }
    }
}
