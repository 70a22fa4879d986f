//! Who a handler acts as. On Lambda, a function acts with its role's credentials, which the
//! SDK finds by itself. On the emulator (IAM enforced by `infra/local/up`) each function has
//! a user holding its role's policies, and `VELLUM_LOCAL_ROLES` names the file of their keys
//! (`{"ChecksumFunction": {"access_key_id", "secret_access_key"}, ...}`): a handler run
//! locally takes its function's keys from there, so the emulator refuses what its role would.

use std::collections::HashMap;

use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use vellum_core::model::Stage;

/// The template's logical id of the function that runs `stage`.
pub fn function_of(stage: Stage) -> &'static str {
    match stage {
        Stage::Start => "StartFunction",
        Stage::Extract => "ExtractFunction",
        Stage::Checksum => "ChecksumFunction",
        Stage::Scan => "ScanFunction",
        Stage::Identify => "IdentifyFunction",
        Stage::Characterize => "CharacterizeFunction",
        Stage::Normalize => "NormalizeFunction",
        Stage::Mets => "MetsFunction",
        Stage::Package => "PackageFunction",
        Stage::Store => "StoreFunction",
    }
}

/// The role a stage's long-job worker (a Fargate task) runs with, if the stage has one.
pub fn long_jobs_role_of(stage: Stage) -> Option<&'static str> {
    match stage {
        Stage::Normalize => Some("NormalizeLongJobsRole"),
        _ => None,
    }
}

pub const DASHBOARD: &str = "DashboardFunction";
pub const MONITOR: &str = "MonitorFunction";
pub const TEST_TRANSFER: &str = "StartTestTransferFunction";

#[derive(Debug, Clone, serde::Deserialize)]
struct Keys {
    access_key_id: String,
    secret_access_key: String,
}

/// The users file of `infra/local/up`.
#[derive(Debug, Clone)]
pub struct LocalRoles {
    path: String,
    keys: HashMap<String, Keys>,
}

impl LocalRoles {
    /// The file `VELLUM_LOCAL_ROLES` names, or None when it names none (on Lambda).
    pub fn from_env() -> Result<Option<Self>, String> {
        match std::env::var("VELLUM_LOCAL_ROLES") {
            Ok(path) if !path.trim().is_empty() => Self::load(&path).map(Some),
            _ => Ok(None),
        }
    }

    pub fn load(path: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("VELLUM_LOCAL_ROLES {path}: {e}"))?;
        let keys = serde_json::from_str(&text)
            .map_err(|e| format!("VELLUM_LOCAL_ROLES {path} is not a users file of infra/local/up: {e}"))?;
        Ok(Self { path: path.to_string(), keys })
    }

    /// `base` with the keys of `function`'s user; an unknown function is an error, never
    /// the operator's keys.
    pub fn config_for(&self, base: &aws_config::SdkConfig, function: &str) -> Result<aws_config::SdkConfig, String> {
        let keys = self
            .keys
            .get(function)
            .ok_or_else(|| format!("{} has no keys for {function}: run infra/local/up again", self.path))?;
        let credentials =
            Credentials::new(&keys.access_key_id, &keys.secret_access_key, None, None, "vellum-local-roles");
        Ok(base.to_builder().credentials_provider(SharedCredentialsProvider::new(credentials)).build())
    }
}

/// The configuration `function`'s handler runs with: its own keys when `VELLUM_LOCAL_ROLES`
/// is set, else the environment's (on Lambda, the function's role).
pub fn config_as(rt: &tokio::runtime::Handle, function: &str) -> Result<aws_config::SdkConfig, String> {
    let base = crate::load_config(rt);
    match LocalRoles::from_env()? {
        Some(roles) => roles.config_for(&base, function),
        None => Ok(base),
    }
}
