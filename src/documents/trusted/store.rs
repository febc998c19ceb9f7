//! The trusted documents kept in Redis, edited by `alawael documents`: one
//! hash per database, `<database>:trusted_documents`, field = the
//! document's id, value = `{"name", "type", "body"}` as JSON. A change is
//! announced on the database's event channel, so running servers that load
//! the set read it again.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::documents::trusted::{Operation, TrustedError};
use crate::events::{self, Event};

#[derive(Serialize, Deserialize)]
struct Stored {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    body: String,
}

pub struct Store {
    connection: MultiplexedConnection,
    key: String,
    channel: String,
    signing: events::EventKey,
    timeout: Duration,
}

/// The Redis key of a database's trusted documents.
pub fn key(database: &str) -> String {
    format!("{database}:trusted_documents")
}

impl Store {
    /// Connects to the configured Redis; an error when there is none.
    pub async fn open(settings: &Settings, database: &str) -> Result<Self, TrustedError> {
        let redis = &settings.redis;
        let url = redis.url.as_ref().ok_or(TrustedError::NoRedis)?;
        let client = crate::cache::redis_client(redis, url.expose_secret())?;
        let connect = Duration::from_millis(redis.connect_timeout_ms.max(1));
        let connection = tokio::time::timeout(connect, client.get_multiplexed_async_connection())
            .await
            .map_err(|_| TrustedError::Timeout)??;
        Ok(Self {
            connection,
            key: key(database),
            channel: events::channel(database),
            signing: events::EventKey::of(settings),
            // Reading a large set takes longer than a single command.
            timeout: Duration::from_millis(redis.response_timeout_ms.max(1)) * 10,
        })
    }

    async fn run<T: redis::FromRedisValue>(
        &mut self,
        command: &redis::Cmd,
    ) -> Result<T, TrustedError> {
        tokio::time::timeout(self.timeout, command.query_async(&mut self.connection))
            .await
            .map_err(|_| TrustedError::Timeout)?
            .map_err(TrustedError::from)
    }

    /// Adds `operations` (already verified); returns how many were new.
    pub async fn add(&mut self, operations: &[Operation]) -> Result<usize, TrustedError> {
        if operations.is_empty() {
            return Ok(0);
        }
        let mut command = redis::cmd("HSET");
        command.arg(&self.key);
        for op in operations {
            let stored = Stored {
                name: op.name.clone(),
                kind: op.kind.clone(),
                body: op.body.clone(),
            };
            let value = serde_json::to_string(&stored).map_err(|e| TrustedError::Stored {
                id: op.id.clone(),
                reason: e.to_string(),
            })?;
            command.arg(&op.id).arg(value);
        }
        let added: usize = self.run(&command).await?;
        self.announce().await?;
        Ok(added)
    }

    /// Every stored document, by id; each is checked against its id again.
    pub async fn list(&mut self) -> Result<Vec<Operation>, TrustedError> {
        let mut command = redis::cmd("HGETALL");
        command.arg(&self.key);
        let fields: std::collections::HashMap<String, String> = self.run(&command).await?;
        let mut operations = fields
            .into_iter()
            .map(|(id, value)| {
                let stored: Stored =
                    serde_json::from_str(&value).map_err(|e| TrustedError::Stored {
                        id: id.clone(),
                        reason: e.to_string(),
                    })?;
                if hex::encode(crate::documents::trusted::digest(&stored.body)) != id {
                    return Err(TrustedError::Stored {
                        id,
                        reason: "its body's SHA-256 is not its id".into(),
                    });
                }
                Ok(Operation {
                    id,
                    name: stored.name,
                    kind: stored.kind,
                    body: stored.body,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        operations.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(operations)
    }

    /// Removes the document `id`; false when there was none.
    pub async fn remove(&mut self, id: &str) -> Result<bool, TrustedError> {
        let mut command = redis::cmd("HDEL");
        command.arg(&self.key).arg(id);
        let removed: usize = self.run(&command).await?;
        if removed > 0 {
            self.announce().await?;
        }
        Ok(removed > 0)
    }

    /// Tells running servers that the set changed.
    async fn announce(&mut self) -> Result<(), TrustedError> {
        let Some(message) = events::wire(
            &Event::TrustedDocumentsChanged,
            &self.channel,
            &self.signing,
        ) else {
            return Ok(());
        };
        let mut command = redis::cmd("PUBLISH");
        command.arg(&self.channel).arg(message);
        let _receivers: i64 = self.run(&command).await?;
        Ok(())
    }
}
