//! The domain model, named as Archivematica names it so archivists recognise it.

pub mod event;
pub mod ids;
pub mod messages;
pub mod stage;

pub use event::{by_vellum, program_detail, EventOutcome, EventType, UnknownWord};
pub use ids::{derived_id, file_id, independent_id, preservation_copy_id, VELLUM_NAMESPACE};
pub use stage::{Stage, UnknownStage};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub type Timestamp = DateTime<Utc>;

/// Where a transfer stands. REJECTED means intake refused the package; FAILED means a later
/// microservice failed for good. Both keep the record and the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransferStatus {
    Processing,
    Complete,
    Failed,
    Rejected,
}

impl TransferStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processing => "PROCESSING",
            Self::Complete => "COMPLETE",
            Self::Failed => "FAILED",
            Self::Rejected => "REJECTED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "PROCESSING" => Self::Processing,
            "COMPLETE" => Self::Complete,
            "FAILED" => Self::Failed,
            "REJECTED" => Self::Rejected,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        self != Self::Processing
    }
}

/// Catalogue identifiers taken from metadata.csv.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueIdentifiers {
    /// `dc.identifier` for catalogued packages.
    pub catalogue_identifier: Option<String>,
    pub collection_reference: Option<String>,
    pub accession_number: Option<String>,
    /// Every `dc.*` column of metadata.csv, kept as Dublin Core (`dc.title` → `title`).
    #[serde(default)]
    pub dublin_core: BTreeMap<String, String>,
    /// The transfer's name, for profiles that file the AIP under it (standard transfers
    /// and bags, which need no catalogue identifier), made a plain folder name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_name: Option<String>,
    /// The one folder an Archivematica transfer was zipped inside, left behind at intake:
    /// the upload's names are this folder's, the transfer's are below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapping_folder: Option<String>,
    /// The profile switches the package's own `processingMCP.xml` set, by switch name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub processing_choices: BTreeMap<String, bool>,
}

impl CatalogueIdentifiers {
    /// The identifier the AIP is filed under: the catalogue identifier, else the accession.
    pub fn external_identifier(&self) -> Option<String> {
        if let Some(id) = self.catalogue_identifier.as_deref().filter(|s| !s.is_empty()) {
            return Some(id.to_string());
        }
        match (&self.collection_reference, &self.accession_number) {
            (Some(c), Some(a)) if !c.is_empty() && !a.is_empty() => Some(format!("{c}/{a}")),
            (_, Some(a)) if !a.is_empty() => Some(a.clone()),
            _ => self.transfer_name.clone().filter(|n| !n.is_empty()),
        }
    }
}

/// Archive endings that start a transfer.
const ARCHIVE_ENDINGS: &[&str] = &[".zip", ".tar.gz", ".tgz", ".tar"];

/// Whether an uploaded key starts anything at all. Log objects and other keys do not.
pub fn starts_a_transfer(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    ARCHIVE_ENDINGS.iter().any(|e| lower.ends_with(e)) && !lower.ends_with('/')
}

/// The package's name: its file name without the archive ending.
pub fn transfer_name(key: &str) -> String {
    let file = key.rsplit('/').next().unwrap_or(key);
    let lower = file.to_ascii_lowercase();
    let cut = ARCHIVE_ENDINGS.iter().find(|e| lower.ends_with(*e)).map_or(file.len(), |e| file.len() - e.len());
    file[..cut].to_string()
}

/// One uploaded package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    pub id: Uuid,
    /// The package's name: the upload's file name without its archive extension.
    pub name: String,
    pub source_bucket: String,
    pub source_key: String,
    /// When S3 says the upload happened; names the upload's log objects and tags.
    pub source_event_time: String,
    /// The upload event's identity (SHA-256 of bucket, key, event name, sequencer,
    /// version): a retried event writes the same log object, not a second one.
    pub event_key: String,
    pub profile: String,
    pub identifiers: CatalogueIdentifiers,
    pub status: TransferStatus,
    pub current_microservice: Option<String>,
    pub sip_uuid: Uuid,
    pub aip_uuid: Uuid,
    pub failure_reason: Option<String>,
    pub file_count: u64,
    pub batch_count: u32,
    /// Where the stored AIP is, once stored.
    pub aip_key: Option<String>,
    /// Where the stored DIP is (a folder of the DIP location), when the profile stores one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dip_key: Option<String>,
    pub aip_version: Option<u32>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    /// Hidden from the dashboard's lists once ended (Archivematica's "remove").
    #[serde(default)]
    pub hidden: bool,
    /// The last progress time at which the monitor flagged this transfer as stuck: it is
    /// flagged once for each time it stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stuck_since: Option<Timestamp>,
    /// When the fixity audit last read the stored AIP back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixity_checked_at: Option<Timestamp>,
    /// Files whose virus check was not performed (over clamd's limits, scanning off),
    /// counted when the METS is written; None before then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_not_scanned: Option<u64>,
    /// Originals a copy (preservation, access, thumbnail) could not be made of, counted by
    /// the METS stage (None before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_not_normalized: Option<u64>,
    /// Each file's validation statement, counted by the METS stage (None before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationCounts>,
}

/// How the transfer's files' validation statements came out: each file counted once, as
/// failed if any of its validation events failed, else as passed if one passed (a partial
/// pass too), else as not performed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationCounts {
    pub passed: u64,
    pub failed: u64,
    pub not_performed: u64,
}

impl ValidationCounts {
    /// Counts one file by its events.
    pub fn add(&mut self, events: &[PremisEvent]) {
        let validations = || events.iter().filter(|e| e.event_type == EventType::Validation);
        if validations().any(|e| e.outcome == EventOutcome::Fail) {
            self.failed += 1;
        } else if validations().any(|e| matches!(e.outcome, EventOutcome::Pass | EventOutcome::PartialPass)) {
            self.passed += 1;
        } else {
            self.not_performed += 1;
        }
    }

    pub fn merge(&mut self, other: &Self) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.not_performed += other.not_performed;
    }
}

impl Transfer {
    /// What a search by name or identifier looks through, in lower case.
    pub fn search_text(&self) -> String {
        let ids = &self.identifiers;
        [
            Some(&self.name),
            ids.catalogue_identifier.as_ref(),
            ids.collection_reference.as_ref(),
            ids.accession_number.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|s| s.to_lowercase())
        .collect::<Vec<_>>()
        .join("\n")
    }

    /// A new transfer of the upload at `bucket`/`key`, PROCESSING, with fresh SIP and AIP
    /// UUIDs; what the upload event and the profile tell is filled in by the caller.
    pub fn new(id: Uuid, sip_uuid: Uuid, aip_uuid: Uuid, bucket: &str, key: &str, now: Timestamp) -> Self {
        Self {
            id,
            name: transfer_name(key),
            source_bucket: bucket.to_string(),
            source_key: key.to_string(),
            source_event_time: String::new(),
            event_key: String::new(),
            profile: String::new(),
            identifiers: CatalogueIdentifiers::default(),
            status: TransferStatus::Processing,
            current_microservice: None,
            sip_uuid,
            aip_uuid,
            failure_reason: None,
            file_count: 0,
            batch_count: 0,
            aip_key: None,
            dip_key: None,
            aip_version: None,
            created_at: now,
            updated_at: now,
            completed_at: None,
            hidden: false,
            stuck_since: None,
            fixity_checked_at: None,
            files_not_scanned: None,
            files_not_normalized: None,
            validation: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Processing,
    Completed,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processing => "PROCESSING",
            Self::Completed => "COMPLETE",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "PROCESSING" => Self::Processing,
            "COMPLETE" => Self::Completed,
            "FAILED" => Self::Failed,
            _ => return None,
        })
    }
}

/// One microservice run on one transfer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub uuid: Uuid,
    pub transfer_id: Uuid,
    /// The pipeline stage that runs this job (`extract`, `checksum`, ...).
    pub stage: String,
    pub microservice_group: String,
    pub name: String,
    pub status: JobStatus,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    /// Fan-in counter for per-file stages: batches this job has finished.
    pub batches_done: u32,
    /// The last transient error a delivery of this stage met (the message was given back):
    /// what a dead-lettered message's record says when the queue keeps no reason (SQS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the job last moved on (a batch recorded, a checkpoint taken): how the monitor
    /// tells a long job from a stuck one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progressed_at: Option<Timestamp>,
}

/// One file's execution inside a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub uuid: Uuid,
    pub job_uuid: Uuid,
    pub file_uuid: Uuid,
    /// The file's path in the transfer when the task ran (Archivematica's `file_name`).
    #[serde(default)]
    pub file_name: String,
    pub exit_code: i32,
    pub started_at: Timestamp,
    pub ended_at: Timestamp,
    /// Short output for the dashboard; anything large goes to the object store.
    pub stdout: String,
    pub stderr: String,
}

/// Which part of the package a file came from; decides its place in the AIP and METS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileUse {
    /// A file under `objects/`: what the archivist deposited.
    Original,
    /// A file under `metadata/` (metadata.csv, rights.csv).
    Metadata,
    /// Documentation Vellum adds: the transfer METS.
    SubmissionDocumentation,
    /// A preservation copy normalization made of an original (`File::source`), beside it
    /// under `objects/`.
    Preservation,
    /// The text OCR read in an original (`File::source`), under
    /// `objects/metadata/OCRfiles/`.
    Transcription,
}

impl FileUse {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Original => "original",
            Self::Metadata => "metadata",
            Self::SubmissionDocumentation => "submissionDocumentation",
            Self::Preservation => "preservation",
            Self::Transcription => "text/ocr",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "original" => Some(Self::Original),
            "metadata" => Some(Self::Metadata),
            "submissionDocumentation" => Some(Self::SubmissionDocumentation),
            "preservation" => Some(Self::Preservation),
            "text/ocr" => Some(Self::Transcription),
            _ => None,
        }
    }
}

/// A PRONOM identification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatId {
    pub puid: String,
    pub name: String,
    pub version: Option<String>,
    /// True when only the extension suggested it.
    #[serde(default)]
    pub tentative: bool,
}

/// One file of a transfer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct File {
    pub uuid: Uuid,
    pub transfer_id: Uuid,
    /// The batch of per-file work this file travels in.
    pub batch: u32,
    /// The archive entry index it was extracted from.
    pub entry_index: u64,
    pub file_use: FileUse,
    /// Path as it was in the package, e.g. `objects/letters/1901.pdf`.
    pub original_path: String,
    /// Path in the working area and the AIP, relative to the transfer.
    pub current_path: String,
    pub size: u64,
    /// Algorithm name (`sha256`, `md5`, ...) → lowercase hex digest.
    #[serde(default)]
    pub checksums: BTreeMap<String, String>,
    pub format: Option<FormatId>,
    pub modified: Option<Timestamp>,
    /// Technical metadata from characterization (`width`, `pdf_version`, …).
    #[serde(default)]
    pub characteristics: BTreeMap<String, String>,
    /// The original a preservation copy (PREMIS: derivation, has source) or a transcription
    /// was made from.
    #[serde(default)]
    pub source: Option<Uuid>,
}

#[cfg(test)]
impl File {
    /// An original of one byte, for unit tests: at `original`, now at `current`.
    pub(crate) fn for_test(original: &str, current: &str) -> Self {
        File {
            uuid: uuid::Uuid::nil(),
            transfer_id: uuid::Uuid::nil(),
            batch: 0,
            entry_index: 0,
            file_use: FileUse::Original,
            original_path: original.into(),
            current_path: current.into(),
            size: 1,
            checksums: Default::default(),
            format: None,
            modified: None,
            characteristics: Default::default(),
            source: None,
        }
    }
}

impl File {
    /// Whether sanitizing changed the file's name or a folder's. Where the transfer's layout
    /// puts a file (a bag's payload out of `data/`, a standard transfer's top-level files into
    /// `objects/`, a wrapping folder left behind) is its place, not a new name: the names
    /// below the file's top folder are compared with as many of the original's last names.
    pub fn renamed(&self) -> bool {
        let mut current = self.current_path.rsplit('/');
        let mut original = self.original_path.rsplit('/');
        // The top folder (objects/, metadata/, …) is the layout's; a file at the top has none.
        let below_top = self.current_path.matches('/').count();
        (0..below_top.max(1)).any(|_| match (current.next(), original.next()) {
            (Some(c), Some(o)) => c != o,
            _ => false,
        })
    }

    pub fn sha256(&self) -> Option<&str> {
        self.checksums.get("sha256").map(String::as_str)
    }
}

/// What a per-file stage learned about a file; merged into the file record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FilePatch {
    pub uuid: Uuid,
    #[serde(default)]
    pub checksums: BTreeMap<String, String>,
    pub size: Option<u64>,
    pub format: Option<FormatId>,
    #[serde(default)]
    pub characteristics: BTreeMap<String, String>,
}

/// Who took part in an event, as PREMIS agents.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Agent {
    /// `preservation system`, `repository code`, `Archivematica user pk` ...
    pub identifier_type: String,
    pub identifier_value: String,
    pub name: String,
    /// `software`, `organization`, `Archivematica user`.
    pub agent_type: String,
}

/// What happened to a file (or to the whole transfer when `file_uuid` is None).
/// Events are the archival record: written once, never rewritten.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PremisEvent {
    /// Derived from what the event is about, so a redelivered message writes the same id.
    pub uuid: Uuid,
    pub transfer_id: Uuid,
    pub file_uuid: Option<Uuid>,
    /// PREMIS eventType, e.g. `ingestion`, `message digest calculation`.
    pub event_type: EventType,
    pub date_time: Timestamp,
    pub detail: String,
    pub outcome: EventOutcome,
    pub outcome_detail: String,
    pub agents: Vec<Agent>,
}

/// The event that a stage records, before it is given its id and agents.
impl PremisEvent {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        transfer_id: Uuid,
        file_uuid: Option<Uuid>,
        event_type: EventType,
        date_time: Timestamp,
        detail: String,
        outcome: EventOutcome,
        outcome_detail: String,
        agents: Vec<Agent>,
    ) -> Self {
        let subject = file_uuid.unwrap_or(transfer_id);
        Self {
            uuid: derived_id(subject, &format!("event/{event_type}")),
            transfer_id,
            file_uuid,
            event_type,
            date_time,
            detail,
            outcome,
            outcome_detail,
            agents,
        }
    }
}

/// The AIP a transfer produced, once stored and verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAip {
    pub key: String,
    pub version: u32,
    pub space: String,
    /// The DIP stored with it, if the profile stores one.
    pub dip: Option<String>,
}

/// A person or a script's owner, known by name, and to an OIDC provider by `identity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub created_at: Timestamp,
    /// What they may do; a user registered before roles existed could do everything the
    /// dashboard offered, and keeps that as `operator`.
    #[serde(default = "Role::before_roles")]
    pub role: Role,
    /// Who they are to an OpenID Connect provider: `ISSUER|SUBJECT` (Azure AD's `oid` as
    /// the subject), which a directory never reuses, unlike an email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// What a user may do, each role including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads: transfers, jobs, files, AIPs, the status.
    Viewer,
    /// Changes the work: starts, retries, hides, redrives, approves.
    Operator,
    /// Users and keys besides.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The role of a user stored before roles existed.
    pub fn before_roles() -> Role {
        Role::Operator
    }
}

/// An API key as stored: its digest, never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// The first 12 hex digits of the digest: how an operator names the key to revoke it.
    pub id: String,
    pub user: String,
    /// SHA-256 of the key, hex.
    pub digest: String,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

/// A signed-in browser's session (embedded mode), by its token's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub digest: String,
    pub user: String,
    pub expires_at: Timestamp,
    /// The digest of the API key the session was opened with: revoking that key ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_digest: Option<String>,
}

/// Who records Vellum's PREMIS events, built once for a message's run: the software, the
/// organization and the user. Each event takes its time from the clock when it is made.
#[derive(Debug, Clone, PartialEq)]
pub struct EventStamp {
    agents: Vec<Agent>,
}

impl EventStamp {
    pub fn new(repository_code: &str, organization: &str, uploader: &str) -> Self {
        let mut agents = system_agents(repository_code, organization);
        agents.push(Agent {
            identifier_type: "Archivematica user pk".into(),
            identifier_value: uploader.to_string(),
            name: format!("username=\"{uploader}\""),
            agent_type: "Archivematica user".into(),
        });
        Self { agents }
    }

    /// The agents of every event: the software, the organization, the user.
    pub fn agents(&self) -> Vec<Agent> {
        self.agents.clone()
    }

    /// A PREMIS event about one file, at `at`.
    pub fn file_event(
        &self,
        file: &File,
        event_type: EventType,
        at: Timestamp,
        detail: String,
        outcome: EventOutcome,
        outcome_detail: String,
    ) -> PremisEvent {
        PremisEvent::new(
            file.transfer_id,
            Some(file.uuid),
            event_type,
            at,
            detail,
            outcome,
            outcome_detail,
            self.agents(),
        )
    }
}

/// The agents of what Vellum does by itself: the software and the organization.
pub fn system_agents(repository_code: &str, organization: &str) -> Vec<Agent> {
    vec![
        Agent {
            identifier_type: "preservation system".into(),
            identifier_value: crate::SOFTWARE_AGENT.into(),
            name: "Vellum".into(),
            agent_type: "software".into(),
        },
        Agent {
            identifier_type: "repository code".into(),
            identifier_value: repository_code.into(),
            name: organization.into(),
            agent_type: "organization".into(),
        },
    ]
}
