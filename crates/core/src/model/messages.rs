//! What travels on the queues. Every message names its transfer; per-file stages also
//! name the batch. Bodies are JSON so they read well in a dead-letter queue.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An object landing in the uploads bucket, as S3 reports it (decoded key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadEvent {
    pub bucket: String,
    pub key: String,
    pub event_name: String,
    pub event_time: String,
    pub sequencer: String,
    pub version_id: Option<String>,
    pub size: u64,
    /// The id the transfer is to have: set when someone starts a transfer through the API
    /// and is told its id at once; S3's events carry none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<Uuid>,
}

impl UploadEvent {
    /// The event S3 would send for this object. The sequencer comes from the object's
    /// modification time and size, so the same upload seen twice is the same event.
    pub fn for_object(bucket: &str, key: &str, size: u64, last_modified: Option<crate::model::Timestamp>) -> Self {
        let modified = last_modified.unwrap_or_default();
        let nanos = modified.timestamp_nanos_opt().unwrap_or_default();
        Self {
            bucket: bucket.to_string(),
            key: key.to_string(),
            event_name: "ObjectCreated:Put".to_string(),
            event_time: modified.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            sequencer: format!("{nanos:016X}{size:016X}"),
            version_id: None,
            size,
            transfer_id: None,
        }
    }

    /// A transfer of an object already in the uploads bucket, started by a person or a
    /// script: a new event each time (asked twice, it is two transfers), with its id chosen
    /// now so that the caller can follow it.
    pub fn started(bucket: &str, key: &str, size: u64, transfer_id: Uuid, now: crate::model::Timestamp) -> Self {
        Self {
            event_name: "ObjectCreated:Started".to_string(),
            event_time: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            sequencer: transfer_id.simple().to_string().to_uppercase(),
            transfer_id: Some(transfer_id),
            ..Self::for_object(bucket, key, size, Some(now))
        }
    }

    /// SHA-256 over what makes an S3 event unique, so a redelivered event is recognised.
    pub fn idempotency_key(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [
            self.bucket.as_str(),
            self.key.as_str(),
            self.event_name.as_str(),
            self.sequencer.as_str(),
            self.version_id.as_deref().unwrap_or(""),
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// The notice published when an AIP is stored and verified; filterable by `space`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AipStored {
    pub identifier: String,
    pub space: String,
    pub version: u32,
    pub aip_uuid: Uuid,
    pub transfer_id: Uuid,
    pub origin: String,
    #[serde(rename = "timeSent")]
    pub time_sent: String,
    /// The second storage location the AIP was copied to and verified in, if one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    /// The DIP stored with the AIP (its folder in the DIP location), if the profile stores one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dip: Option<String>,
}

/// Work for any stage after start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageMessage {
    pub transfer_id: Uuid,
    /// The batch, for per-file stages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<u32>,
    /// Where a per-file stage that ran out of time goes on: its batch's files after this
    /// cursor are still to do (what came before is written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_after: Option<String>,
}

impl StageMessage {
    pub fn transfer(transfer_id: Uuid) -> Self {
        Self { transfer_id, batch: None, resume_after: None }
    }

    pub fn batch(transfer_id: Uuid, batch: u32) -> Self {
        Self { transfer_id, batch: Some(batch), resume_after: None }
    }

    /// The same batch, continued after `cursor`.
    pub fn continued(&self, cursor: String) -> Self {
        Self { resume_after: Some(cursor), ..self.clone() }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a stage message always serializes")
    }
}

/// An S3 event notification that cannot be read as one.
#[derive(Debug, thiserror::Error)]
pub enum S3EventError {
    #[error("not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    /// A field every notification record has is missing (`Records`, a key, a bucket).
    #[error("{0}")]
    Missing(&'static str),
    /// A key whose `%XX` escape is broken, or that does not decode to UTF-8.
    #[error("the key {key:?} {why}")]
    BadKey { key: String, why: &'static str },
}

/// Reads an S3 event notification (as S3 sends it to a queue or a function) into upload
/// events. A test event (`s3:TestEvent`) holds none. Keys arrive URL-encoded, with `+` for
/// a space, and are decoded here once.
pub fn upload_events_from_s3(json: &str) -> Result<Vec<UploadEvent>, S3EventError> {
    let v: serde_json::Value = serde_json::from_str(json)?;
    if v.get("Event").and_then(|e| e.as_str()) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    let records = v
        .get("Records")
        .and_then(|r| r.as_array())
        .ok_or(S3EventError::Missing("an S3 notification has a Records array"))?;
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let s = |path: &[&str]| -> Option<String> {
            let mut cur = r;
            for p in path {
                cur = cur.get(*p)?;
            }
            cur.as_str().map(str::to_string)
        };
        let raw_key = s(&["s3", "object", "key"]).ok_or(S3EventError::Missing("a record without s3.object.key"))?;
        out.push(UploadEvent {
            bucket: s(&["s3", "bucket", "name"]).ok_or(S3EventError::Missing("a record without s3.bucket.name"))?,
            key: decode_s3_key(&raw_key)?,
            event_name: s(&["eventName"]).unwrap_or_default(),
            event_time: s(&["eventTime"]).unwrap_or_default(),
            sequencer: s(&["s3", "object", "sequencer"]).unwrap_or_default(),
            version_id: s(&["s3", "object", "versionId"]),
            size: r.pointer("/s3/object/size").and_then(|v| v.as_u64()).unwrap_or(0),
            transfer_id: None,
        });
    }
    Ok(out)
}

/// S3's form encoding of keys in notifications: `+` is a space, `%XX` a byte.
pub fn decode_s3_key(raw: &str) -> Result<String, S3EventError> {
    let broken = || S3EventError::BadKey { key: raw.to_string(), why: "has a broken escape" };
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3).ok_or_else(broken)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| broken())?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| S3EventError::BadKey { key: raw.to_string(), why: "does not decode to UTF-8" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_notifications_decode_keys_and_skip_test_events() {
        let sample = include_str!("../../../../events/s3-object-created.json");
        let events = upload_events_from_s3(sample).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].key, "born-digital/PP ABC (draft)/Café.zip");
        assert_eq!(events[0].bucket, "vellum-uploads");
        assert_eq!(events[0].size, 1024);
        assert!(upload_events_from_s3(r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#).unwrap().is_empty());
        assert!(decode_s3_key("bad%zz").is_err());
        assert_eq!(decode_s3_key("a%2Bb+c").unwrap(), "a+b c");
    }
}
