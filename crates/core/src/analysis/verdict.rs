//! What a validation found, in the three words the PREMIS event's outcome takes.

/// What a validation found. Only `WellFormed` claims the file is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    WellFormed,
    /// Part of the file was checked (named); the rest was not, for the reason given.
    Limited(String),
    /// What is wrong.
    Invalid(String),
}
