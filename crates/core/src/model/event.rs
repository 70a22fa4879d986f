//! PREMIS events in Archivematica's vocabulary: what happened (`EventType`) and how it
//! came out (`EventOutcome`), each one enum, written as Archivematica writes them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A PREMIS eventType, as Archivematica records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    /// A catalogued package taken in (accessions are registered instead).
    #[serde(rename = "ingestion")]
    Ingestion,
    /// An accession taken in.
    #[serde(rename = "registration")]
    Registration,
    #[serde(rename = "message digest calculation")]
    MessageDigestCalculation,
    /// A digest checked against one recorded or supplied.
    #[serde(rename = "fixity check")]
    FixityCheck,
    #[serde(rename = "virus check")]
    VirusCheck,
    #[serde(rename = "format identification")]
    FormatIdentification,
    #[serde(rename = "validation")]
    Validation,
    #[serde(rename = "metadata extraction")]
    MetadataExtraction,
    /// A name sanitized.
    #[serde(rename = "filename change")]
    FilenameChange,
    /// The METS (and the AIP) made.
    #[serde(rename = "creation")]
    Creation,
    /// Something left out of the AIP (desktop clutter, an empty folder), recorded.
    #[serde(rename = "deletion")]
    Deletion,
    /// A preservation copy made of an original, recorded on the original.
    #[serde(rename = "normalization")]
    Normalization,
    /// The text in an original read by OCR, recorded on the original.
    #[serde(rename = "transcription")]
    Transcription,
    /// A file taken out of a package inside the transfer (or a package kept whole, and why).
    #[serde(rename = "unpacking")]
    Unpacking,
}

impl EventType {
    pub const ALL: [EventType; 14] = [
        EventType::Ingestion,
        EventType::Registration,
        EventType::MessageDigestCalculation,
        EventType::FixityCheck,
        EventType::VirusCheck,
        EventType::FormatIdentification,
        EventType::Validation,
        EventType::MetadataExtraction,
        EventType::FilenameChange,
        EventType::Creation,
        EventType::Deletion,
        EventType::Normalization,
        EventType::Transcription,
        EventType::Unpacking,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::Ingestion => "ingestion",
            EventType::Registration => "registration",
            EventType::MessageDigestCalculation => "message digest calculation",
            EventType::FixityCheck => "fixity check",
            EventType::VirusCheck => "virus check",
            EventType::FormatIdentification => "format identification",
            EventType::Validation => "validation",
            EventType::MetadataExtraction => "metadata extraction",
            EventType::FilenameChange => "filename change",
            EventType::Creation => "creation",
            EventType::Deletion => "deletion",
            EventType::Normalization => "normalization",
            EventType::Transcription => "transcription",
            EventType::Unpacking => "unpacking",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = UnknownWord;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownWord { what: "a PREMIS event type", word: s.to_string() })
    }
}

impl PartialEq<&str> for EventType {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for EventType {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// How an event's detail names the program that acted and its version, as Archivematica
/// writes it: `program="ClamAV (clamd)"; version="…"`.
pub fn program_detail(program: &str, version: &str) -> String {
    format!("program=\"{program}\"; version=\"{version}\"")
}

/// Vellum itself as the program that acted.
pub fn by_vellum() -> String {
    program_detail("Vellum", crate::SOFTWARE_AGENT)
}

/// A stored word that names no event type or outcome: state that cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{word:?} is not {what}")]
pub struct UnknownWord {
    pub what: &'static str,
    pub word: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventOutcome {
    Pass,
    Fail,
    /// Part of what the check covers was checked and passed; the note names what was not
    /// (a PDF's page contents, an image over the decoder's limits). Archivematica records
    /// JHOVE's "well-formed, not valid" the same way.
    PartialPass,
    /// Format identification found no format: no signature matched and the extension names none.
    NoMatch,
    /// Format identification guessed from the extension alone: no signature matched.
    ExtensionOnly,
    /// Format identification found plain text from the bytes alone: no signature matched.
    TextOnly,
    /// Format identification matched a signature that the file's extension disagrees with.
    ExtensionMismatch,
    /// Used where PREMIS has no pass/fail notion (ingestion, digest calculation).
    Positive,
    /// The check could not be or was not made (a file too large to scan, scanning off).
    NotPerformed,
    None,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "Pass",
            Self::Fail => "Fail",
            Self::PartialPass => "partial pass",
            Self::NoMatch => "no match",
            Self::ExtensionOnly => "extension only",
            Self::TextOnly => "text only",
            Self::ExtensionMismatch => "extension mismatch",
            Self::Positive => "positive",
            Self::NotPerformed => "Not performed",
            Self::None => "",
        }
    }

    /// The outcome a stored word names; a word that is no outcome is an error, never `None`.
    pub fn parse(s: &str) -> Result<Self, UnknownWord> {
        Ok(match s {
            "Pass" => Self::Pass,
            "Fail" => Self::Fail,
            "partial pass" => Self::PartialPass,
            "no match" => Self::NoMatch,
            "extension only" => Self::ExtensionOnly,
            "text only" => Self::TextOnly,
            "extension mismatch" => Self::ExtensionMismatch,
            "positive" => Self::Positive,
            "Not performed" => Self::NotPerformed,
            "" => Self::None,
            other => return Err(UnknownWord { what: "a PREMIS event outcome", word: other.to_string() }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_read_back_and_strangers_are_refused() {
        let read_back: Vec<EventType> = EventType::ALL.iter().map(|t| t.as_str().parse().unwrap()).collect();
        assert_eq!(read_back, EventType::ALL);
        let json: Vec<String> = EventType::ALL.iter().map(|t| serde_json::to_string(t).unwrap()).collect();
        assert!(json.iter().zip(EventType::ALL).all(|(j, t)| *j == format!("\"{t}\"")), "{json:?}");
        assert!("virus scan".parse::<EventType>().is_err());
        assert_eq!(EventOutcome::parse("Not performed"), Ok(EventOutcome::NotPerformed));
        assert_eq!(EventOutcome::parse(""), Ok(EventOutcome::None));
        assert!(EventOutcome::parse("Maybe").is_err());
    }
}
