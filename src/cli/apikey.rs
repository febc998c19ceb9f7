//! `alawael apikey create|list|revoke`: API keys for partner systems, for
//! operators (ADMIN does the same through the API). The key is printed
//! once; creation and revocation are audited as the system's.

use crate::db::Db;
use crate::db::api_keys::{ApiKeyRecord, ApiKeys, new_key};
use crate::domain::scopes::Scopes;
use crate::domain::{Actor, Role};
use crate::models::audit_log_entry::entry::NewEntry;
use crate::models::user::api_keys_api::{described, make};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Make a key and print it (shown this once).
    Create {
        /// What it is for (the partner system).
        #[arg(long)]
        name: String,
        /// Its scopes, comma-separated (e.g. `assets:read,reports:request`).
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// The most it may do: MANAGER, THERAPIST or USER.
        #[arg(long, default_value = "USER")]
        role: String,
        /// Days until it stops working; never when absent.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List the keys (never their secrets) with their use counts.
    List,
    /// Revoke a key at once.
    Revoke {
        /// The key's id (from `list`).
        id: String,
    },
}

async fn audit(
    db: &Db,
    action: &str,
    key: &ApiKeyRecord,
    changes: Vec<crate::models::audit_log_entry::changes::Change>,
) -> anyhow::Result<()> {
    db.audit()
        .append(NewEntry {
            id: None,
            actor: Actor::system(),
            action: action.into(),
            entity_type: "ApiKey".into(),
            entity_id: Some(key.id.to_hex()),
            changes,
            request_id: None,
        })
        .await?;
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let settings = super::settings()?;
    let db = Db::connect(&settings.database).await?;
    let keys = ApiKeys::new(&db);
    match args.action {
        Action::Create {
            name,
            scopes,
            role,
            expires_in_days,
        } => {
            let scopes = Scopes::parse(&scopes).map_err(anyhow::Error::msg)?;
            let role: Role = serde_json::from_value(serde_json::Value::String(role.to_uppercase()))
                .map_err(|_| anyhow::anyhow!("--role is MANAGER, THERAPIST or USER"))?;
            anyhow::ensure!(role != Role::Admin, "a key's role is at most MANAGER");
            let name = crate::domain::text::required(&name, 100)
                .map_err(|m| anyhow::anyhow!("the name {m}"))?;
            let expires_at = expires_in_days.map(|days| {
                bson::DateTime::from_chrono(
                    chrono::Utc::now() + chrono::Duration::days(i64::from(days)),
                )
            });
            let record = make(
                bson::oid::ObjectId::from_bytes([0; 12]),
                name,
                scopes,
                role,
                expires_at,
            );
            let (key, hash) = new_key(record.id);
            let record = ApiKeyRecord {
                hash,
                created_by: None,
                ..record
            };
            keys.insert(&record).await?;
            audit(&db, "apikey.create", &record, described(&record)).await?;
            println!("{key}");
            eprintln!("key {} made; it is shown this once", record.id.to_hex());
        }
        Action::List => {
            for key in keys.list().await? {
                let state = if key.revoked_at.is_some() {
                    "revoked"
                } else if !key.live(bson::DateTime::now()) {
                    "expired"
                } else {
                    "live"
                };
                println!(
                    "{}  {:<8} {:<24} {:<10} {} uses  {}",
                    key.id.to_hex(),
                    state,
                    key.name,
                    key.role.as_str(),
                    key.uses,
                    key.scopes.join(",")
                );
            }
        }
        Action::Revoke { id } => {
            let id = bson::oid::ObjectId::parse_str(&id).map_err(|_| {
                anyhow::anyhow!("{id} is not a key's id (see `alawael apikey list`)")
            })?;
            let Some(key) = keys.revoke(id).await? else {
                anyhow::bail!("there is no key {id}");
            };
            audit(&db, "apikey.revoke", &key, Vec::new()).await?;
            if announce(&settings, db.name(), id).await.is_err() {
                eprintln!(
                    "warning: the servers were not told through Redis; they read the key again within {} s",
                    settings.auth.account_cache_secs
                );
            }
            println!("key {} revoked", id.to_hex());
        }
    }
    Ok(())
}

/// Tells every server, through the event channel, to read the key again.
async fn announce(
    settings: &crate::config::Settings,
    database: &str,
    id: bson::oid::ObjectId,
) -> anyhow::Result<()> {
    use secrecy::ExposeSecret;
    let url = settings
        .redis
        .url
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no Redis"))?;
    let client = crate::cache::redis_client(&settings.redis, url.expose_secret())?;
    let mut redis = client.get_multiplexed_async_connection().await?;
    let channel = crate::events::channel(database);
    let key = crate::events::EventKey::of(settings);
    let message = crate::events::wire(
        &crate::events::Event::AccountChanged { user: id },
        &channel,
        &key,
    )
    .ok_or_else(|| anyhow::anyhow!("the event did not encode"))?;
    redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(message)
        .query_async::<i64>(&mut redis)
        .await?;
    Ok(())
}
