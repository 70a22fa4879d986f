//! What can be wrong with a signature file, kept with its cause.

/// A signature file, or one signature in it, that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// A DROID byte pattern that cannot be read: what was expected, where, in which pattern.
    #[error("{what} at {at} in {pattern:?}")]
    Pattern { what: &'static str, at: usize, pattern: String },
    /// A SubSequence with no Sequence element.
    #[error("a SubSequence without a Sequence")]
    NoSequence,
    /// A pattern that compiles to a regex the matcher refuses (too large, say).
    #[error("{0}")]
    Regex(#[from] regex::Error),
    /// A signature file that is not well-formed XML.
    #[error("{file}: {source}")]
    Xml { file: String, source: roxmltree::Error },
    /// A signature file built into the binary that does not decompress.
    #[error("the built-in {file} is damaged: {source}")]
    Damaged { file: String, source: std::io::Error },
    /// `signatures/versions.txt` names no file of this kind.
    #[error("signatures/versions.txt names no {0} signature file")]
    Unnamed(&'static str),
}
