//! Users, API keys and sessions in the state table, under one partition (`ACCESS`): a
//! handful of items an organisation has, read whole. Sessions carry the table's TTL so an
//! expired one also disappears by itself.

use aws_sdk_dynamodb::types::AttributeValue;
use vellum_core::model::Timestamp;
use vellum_core::operations::access::{ApiKey, Session, User};
use vellum_core::ports::{AccessStore, PortError, PortResult};

use crate::dynamo::{entity, fields, n, s, stamp, text, DynamoState, Item};

const PK: &str = "ACCESS";

fn item_of<T: serde::Serialize>(sk: String, value: &T) -> Item {
    let mut item = fields(value);
    item.insert("pk".into(), s(PK));
    item.insert("sk".into(), s(sk));
    item
}

fn session_item(session: &Session) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), s(PK));
    item.insert("sk".into(), s(format!("S#{}", session.digest)));
    item.insert("user".into(), s(&session.user));
    item.insert("session_expires".into(), s(stamp(&session.expires_at)));
    // The table's TTL attribute: epoch seconds.
    item.insert("expires_at".into(), n(session.expires_at.timestamp()));
    if let Some(key) = &session.key_digest {
        item.insert("key_digest".into(), s(key));
    }
    item
}

fn session_of(item: &Item) -> PortResult<Session> {
    let expires =
        text(item, "session_expires").ok_or_else(|| PortError::Corrupt("a session without its expiry".into()))?;
    Ok(Session {
        digest: text(item, "sk").and_then(|sk| sk.strip_prefix("S#").map(str::to_string)).unwrap_or_default(),
        user: text(item, "user").ok_or_else(|| PortError::Corrupt("a session without its user".into()))?,
        expires_at: chrono::DateTime::parse_from_rfc3339(&expires)
            .map_err(|e| PortError::Corrupt(format!("a session's expiry {expires:?}: {e}")))?
            .to_utc(),
        key_digest: text(item, "key_digest"),
    })
}

impl DynamoState {
    fn access_items(&self, prefix: &str) -> PortResult<Vec<Item>> {
        let (items, _) =
            self.query(None, "pk = :pk AND begins_with(sk, :p)", vec![(":pk", s(PK)), (":p", s(prefix))], None)?;
        Ok(items)
    }
}

impl AccessStore for DynamoState {
    fn add_user(&self, user: &User) -> PortResult<bool> {
        self.put_new(item_of(format!("U#{}", user.name), user))
    }

    fn remove_user(&self, name: &str) -> PortResult<bool> {
        let existed = self.user(name)?.is_some();
        for item in self.access_items("K#")?.iter().chain(self.access_items("S#")?.iter()) {
            if text(item, "user").as_deref() == Some(name) {
                self.delete(PK, &text(item, "sk").unwrap_or_default())?;
            }
        }
        self.delete(PK, &format!("U#{name}"))?;
        Ok(existed)
    }

    fn user(&self, name: &str) -> PortResult<Option<User>> {
        self.get(PK, &format!("U#{name}"))?.map(|i| entity(&clean(i), "user")).transpose()
    }

    fn users(&self) -> PortResult<Vec<User>> {
        // The sort key orders them by name.
        self.access_items("U#")?.into_iter().map(|i| entity(&clean(i), "user")).collect()
    }

    fn add_api_key(&self, key: &ApiKey) -> PortResult<()> {
        if self.put_new(item_of(format!("K#{}", key.digest), key))? {
            Ok(())
        } else {
            Err(PortError::Conflict(format!("an API key with the digest {} exists", key.digest)))
        }
    }

    fn api_key(&self, digest: &str) -> PortResult<Option<ApiKey>> {
        self.get(PK, &format!("K#{digest}"))?.map(|i| entity(&clean(i), "API key")).transpose()
    }

    fn api_keys(&self) -> PortResult<Vec<ApiKey>> {
        let mut keys: Vec<ApiKey> =
            self.access_items("K#")?.into_iter().map(|i| entity(&clean(i), "API key")).collect::<PortResult<_>>()?;
        keys.sort_by(|a, b| (a.created_at, &a.digest).cmp(&(b.created_at, &b.digest)));
        Ok(keys)
    }

    fn revoke_api_key(&self, id: &str, at: Timestamp) -> PortResult<bool> {
        let mut revoked = false;
        for key in self.api_keys()?.into_iter().filter(|k| k.id == id) {
            let done = self.update(
                PK,
                &format!("K#{}", key.digest),
                "SET revoked_at = :at",
                Some("attribute_exists(pk) AND attribute_not_exists(revoked_at)"),
                vec![(":at", AttributeValue::S(stamp(&at)))],
                vec![],
            )?;
            revoked |= done.is_some();
        }
        Ok(revoked)
    }

    fn add_session(&self, session: &Session) -> PortResult<()> {
        if self.put_new(session_item(session))? {
            Ok(())
        } else {
            Err(PortError::Conflict("a session with that token exists".into()))
        }
    }

    fn session(&self, digest: &str) -> PortResult<Option<Session>> {
        self.get(PK, &format!("S#{digest}"))?.map(|i| session_of(&i)).transpose()
    }

    fn remove_session(&self, digest: &str) -> PortResult<()> {
        self.delete(PK, &format!("S#{digest}"))
    }

    fn purge_sessions(&self, now: Timestamp) -> PortResult<u64> {
        // The table's TTL removes them too, within a day or two; this is at once.
        let mut purged = 0;
        for item in self.access_items("S#")? {
            let session = session_of(&item)?;
            if session.expires_at < now {
                self.remove_session(&session.digest)?;
                purged += 1;
            }
        }
        Ok(purged)
    }
}

/// An item without its keys, as the entity's fields.
fn clean(mut item: Item) -> Item {
    item.remove("pk");
    item.remove("sk");
    item
}
