//! `vellum users` and `vellum api-keys`: who may use the dashboard and the API, in the
//! embedded data folder or (with `--aws-endpoint`) in the stack's table.

use clap::Subcommand;
use vellum_core::operations::access;
use vellum_core::ports::{Clock, SystemClock};

use crate::target::{open_access as open, print_json, Target};

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Register a user. People signing in through OIDC are matched by --email (the token's
    /// email or upn claim).
    Add {
        name: String,
        #[arg(long)]
        email: Option<String>,
        /// viewer (reads), operator (starts, retries, hides, redrives, approves) or admin.
        #[arg(long, default_value = "viewer", value_parser = ["viewer", "operator", "admin"])]
        role: String,
        /// Who they are to the OIDC provider, `ISSUER|SUBJECT` (the token's `iss`, and its
        /// `oid` on Azure AD, else its `sub`): how a browser sign-in or a token finds them.
        #[arg(long, value_name = "ISSUER|SUBJECT")]
        identity: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Remove a user, their API keys and their sessions.
    Remove {
        name: String,
        #[command(flatten)]
        target: Target,
    },
    /// List the users.
    List {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create an API key for a user; the key is printed once, alone on the last line.
    Create {
        #[arg(long)]
        user: String,
        #[command(flatten)]
        target: Target,
    },
    /// Revoke a key by its id (the first 12 hex digits `api-keys list` shows).
    Revoke {
        id: String,
        #[command(flatten)]
        target: Target,
    },
    /// List the keys (their ids, never the keys).
    List {
        #[command(flatten)]
        target: Target,
    },
}

pub fn users(command: UsersCommand) -> anyhow::Result<()> {
    let clock = SystemClock;
    match command {
        UsersCommand::Add { name, email, role, identity, target } => {
            let store = open(&target)?;
            let role = access::Role::parse(&role).ok_or_else(|| anyhow::anyhow!("no role {role:?}"))?;
            if !access::add_user(store.as_ref(), &clock, &name, email.as_deref(), role, identity.as_deref())? {
                anyhow::bail!("a user named {name:?} exists already");
            }
            println!("added user {name} ({})", role.name());
        }
        UsersCommand::Remove { name, target } => {
            if !open(&target)?.remove_user(&name)? {
                anyhow::bail!("there is no user named {name:?}");
            }
            println!("removed user {name}, their API keys and sessions");
        }
        UsersCommand::List { target } => {
            let users = open(&target)?.users()?;
            if target.json {
                print_json(&users);
            } else {
                for u in users {
                    println!(
                        "{}\t{}\t{}\t{}",
                        u.name,
                        u.role.name(),
                        u.email.as_deref().unwrap_or("-"),
                        u.created_at.to_rfc3339()
                    );
                }
            }
        }
    }
    Ok(())
}

pub fn api_keys(command: KeysCommand) -> anyhow::Result<()> {
    let clock = SystemClock;
    match command {
        KeysCommand::Create { user, target } => {
            let store = open(&target)?;
            let (record, key) = access::create_api_key(store.as_ref(), &clock, &user)?;
            if target.json {
                print_json(&serde_json::json!({"id": record.id, "user": record.user, "key": key}));
            } else {
                println!("created API key {} for {user}; it is shown once, here:", record.id);
                println!("{key}");
            }
        }
        KeysCommand::Revoke { id, target } => {
            if !open(&target)?.revoke_api_key(&id, clock.now())? {
                anyhow::bail!("no API key {id:?} that is not revoked already (see vellum api-keys list)");
            }
            println!("revoked API key {id}");
        }
        KeysCommand::List { target } => {
            let keys = open(&target)?.api_keys()?;
            if target.json {
                print_json(
                    &keys
                        .iter()
                        .map(|k| {
                            serde_json::json!({
                                "id": k.id, "user": k.user, "created_at": k.created_at, "revoked_at": k.revoked_at,
                            })
                        })
                        .collect::<Vec<_>>(),
                );
            } else {
                for k in keys {
                    let state = k.revoked_at.map_or("active".to_string(), |t| format!("revoked {}", t.to_rfc3339()));
                    println!("{}\t{}\t{}\t{state}", k.id, k.user, k.created_at.to_rfc3339());
                }
            }
        }
    }
    Ok(())
}
