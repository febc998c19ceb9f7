//! Who made a change: a staff member, the system itself, or nobody signed
//! in. Stored with every outbox entry and audit entry.

use bson::oid::ObjectId;
use serde::{Deserialize, Serialize};

/// Who did it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// `user`, `api_key`, `system` or `anonymous`.
    pub kind: String,
    #[serde(default)]
    pub id: Option<ObjectId>,
}

impl Actor {
    pub fn user(id: ObjectId) -> Self {
        Self {
            kind: "user".into(),
            id: Some(id),
        }
    }
    pub fn system() -> Self {
        Self {
            kind: "system".into(),
            id: None,
        }
    }
    pub fn anonymous() -> Self {
        Self {
            kind: "anonymous".into(),
            id: None,
        }
    }
}
