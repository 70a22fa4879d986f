//! `vellum users` and `vellum api-keys`: who may use the dashboard and the API, in the
//! embedded data folder or (with `--aws-endpoint`) in the stack's table.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use vellum_core::access;
use vellum_core::ports::{AccessStore, Clock, SystemClock};

/// Where the users are: the data folder, or the AWS stack.
#[derive(Args, Clone, Debug)]
pub struct Target {
    /// The data folder of `vellum serve` (its vellum.db holds the users).
    #[arg(long, default_value = "./vellum-data", env = "VELLUM_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The AWS endpoint of a stack (the emulator of `infra/local/up`, or AWS itself with
    /// `https://dynamodb.<region>.amazonaws.com`); VELLUM_TABLE names the table.
    #[arg(long)]
    pub aws_endpoint: Option<String>,
    /// Print JSON instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Register a user. People signing in through OIDC are matched by --email (the token's
    /// email or upn claim).
    Add {
        name: String,
        #[arg(long)]
        email: Option<String>,
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

fn open(target: &Target) -> anyhow::Result<Arc<dyn AccessStore>> {
    match &target.aws_endpoint {
        Some(endpoint) => open_aws(endpoint),
        None => {
            std::fs::create_dir_all(&target.data_dir)
                .with_context(|| format!("creating the data folder {}", target.data_dir.display()))?;
            Ok(Arc::new(vellum_local::sqlite_access::SqliteAccessStore::open(&target.data_dir.join("vellum.db"))?))
        }
    }
}

#[cfg(feature = "aws")]
fn open_aws(endpoint: &str) -> anyhow::Result<Arc<dyn AccessStore>> {
    std::env::set_var("AWS_ENDPOINT_URL", endpoint);
    // The runtime lives as long as the command: leaked on purpose, the process ends soon.
    let rt = Box::leak(Box::new(tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?));
    let names = vellum_aws::app::Names::from_env().map_err(anyhow::Error::msg)?;
    Ok(vellum_aws::app::Records::new(&names, rt.handle().clone()).state)
}

#[cfg(not(feature = "aws"))]
fn open_aws(_endpoint: &str) -> anyhow::Result<Arc<dyn AccessStore>> {
    anyhow::bail!("this vellum was built without AWS support: build it with `cargo build -p vellum-cli --features aws`")
}

fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).expect("JSON values serialize"));
}

pub fn users(command: UsersCommand) -> anyhow::Result<()> {
    let clock = SystemClock;
    match command {
        UsersCommand::Add { name, email, target } => {
            let store = open(&target)?;
            if !access::add_user(store.as_ref(), &clock, &name, email.as_deref())? {
                anyhow::bail!("a user named {name:?} exists already");
            }
            println!("added user {name}");
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
                    println!("{}\t{}\t{}", u.name, u.email.as_deref().unwrap_or("-"), u.created_at.to_rfc3339());
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
