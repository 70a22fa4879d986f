//! The access store's port: users, API keys and sign-in sessions.

use super::PortResult;
use crate::model::Timestamp;

/// Users, their API keys and sign-in sessions (see `access.rs`). Secrets are never here,
/// only their digests.
pub trait AccessStore: Send + Sync {
    /// Registers a user; false when one of that name exists (it is left as it is).
    fn add_user(&self, user: &crate::model::User) -> PortResult<bool>;
    /// Removes a user, their keys and sessions; false when there was none.
    fn remove_user(&self, name: &str) -> PortResult<bool>;
    fn user(&self, name: &str) -> PortResult<Option<crate::model::User>>;
    /// Every user, by name.
    fn users(&self) -> PortResult<Vec<crate::model::User>>;
    fn add_api_key(&self, key: &crate::model::ApiKey) -> PortResult<()>;
    /// The key with this digest, revoked or not.
    fn api_key(&self, digest: &str) -> PortResult<Option<crate::model::ApiKey>>;
    /// Every key (revoked ones too), oldest first.
    fn api_keys(&self) -> PortResult<Vec<crate::model::ApiKey>>;
    /// Revokes the key with this id; false when none has it or it was already revoked.
    fn revoke_api_key(&self, id: &str, at: Timestamp) -> PortResult<bool>;
    fn add_session(&self, session: &crate::model::Session) -> PortResult<()>;
    fn session(&self, digest: &str) -> PortResult<Option<crate::model::Session>>;
    fn remove_session(&self, digest: &str) -> PortResult<()>;
    /// Removes every session that expired before `now`; how many.
    fn purge_sessions(&self, now: Timestamp) -> PortResult<u64>;
}
