//! The `users` collection: staff accounts. E-mails are stored lower-cased
//! under a unique index; accounts are deactivated, never deleted.

use crate::domain::roles::MANAGERS;
use bson::oid::ObjectId;
use bson::{DateTime, Document, RawDocument, doc};
use serde::{Deserialize, Serialize};

use crate::db::store::{Record, Store};
use crate::db::{Db, DbError, DbResult, raw};
use crate::domain::{Email, Role};

pub const COLLECTION: &str = "users";

/// A stored account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub email: String,
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    pub active: bool,
    pub password_hash: String,
    #[serde(default)]
    pub last_login_at: Option<DateTime>,
    /// Access tokens issued before this instant are refused (set when the
    /// password, role or status changes: every session ends at once).
    #[serde(default)]
    pub sessions_since: Option<DateTime>,
    /// Sessions ended one by one (logout, `revokeSession`) while access
    /// tokens of theirs may still be alive; pruned as they expire.
    #[serde(default)]
    pub ended_sessions: Vec<EndedSession>,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub created_at: DateTime,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub updated_at: DateTime,
}

/// A session ended before its access tokens expire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndedSession {
    pub id: String,
    /// When its last access token expires at the latest.
    pub until: DateTime,
}

impl Record for UserRecord {
    const COLLECTION: &'static str = COLLECTION;
    fn id(&self) -> ObjectId {
        self.id
    }

    fn from_raw(document: &RawDocument) -> DbResult<Self> {
        let (mut id, mut email, mut name, mut role, mut active, mut password_hash) =
            (None, None, None, None, None, None);
        let (mut department, mut phone, mut last_login_at) = (None, None, None);
        let (mut sessions_since, mut ended_sessions) = (None, Vec::new());
        let (mut created_at, mut updated_at) = (None, None);
        for field in raw::fields(document) {
            let (key, v) = field?;
            match key {
                b"_id" => id = Some(v.object_id("_id")?),
                b"email" => email = Some(v.string("email")?),
                b"name" => name = Some(v.string("name")?),
                b"role" => role = Some(v.variant("role")?),
                b"department" => department = v.optional_string("department")?,
                b"phone" => phone = v.optional_string("phone")?,
                b"active" => active = Some(v.boolean("active")?),
                b"passwordHash" => password_hash = Some(v.string("passwordHash")?),
                b"lastLoginAt" => last_login_at = v.optional_date("lastLoginAt")?,
                b"sessionsSince" => sessions_since = v.optional_date("sessionsSince")?,
                b"endedSessions" => {
                    // Rare and short: read with serde from the raw document.
                    if let Ok(Some(value)) = document.get("endedSessions") {
                        let value =
                            bson::Bson::try_from(value).map_err(|e| DbError::Other(e.into()))?;
                        ended_sessions = bson::from_bson(value)?;
                    }
                    let _ = v;
                }
                b"createdAt" => created_at = Some(v.date("createdAt")?),
                b"updatedAt" => updated_at = Some(v.date("updatedAt")?),
                _ => {}
            }
        }
        Ok(Self {
            id: raw::required(id, "_id")?,
            email: raw::required(email, "email")?,
            name: raw::required(name, "name")?,
            role: raw::required(role, "role")?,
            department,
            phone,
            active: raw::required(active, "active")?,
            password_hash: raw::required(password_hash, "passwordHash")?,
            last_login_at,
            sessions_since,
            ended_sessions,
            created_at: raw::required(created_at, "createdAt")?,
            updated_at: raw::required(updated_at, "updatedAt")?,
        })
    }
}

/// A validated new account.
#[derive(Debug, Clone)]
pub struct UserForCreate {
    pub email: Email,
    pub name: String,
    pub role: Role,
    pub department: Option<String>,
    pub phone: Option<String>,
    pub password_hash: String,
}

/// A validated change; `None` leaves a field, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct UserForUpdate {
    pub name: Option<String>,
    pub role: Option<Role>,
    pub department: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub password_hash: Option<String>,
}

/// Which accounts a list shows.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub roles: Vec<Role>,
    pub active: Option<bool>,
    /// Case-insensitive match on name and e-mail; already regex-escaped.
    pub search: Option<String>,
}

impl UserFilter {
    pub fn to_document(&self) -> Document {
        let mut filter = Document::new();
        if !self.roles.is_empty() {
            let roles: Vec<_> = self
                .roles
                .iter()
                .map(|r| bson::to_bson(r).unwrap_or_default())
                .collect();
            filter.insert("role", doc! { "$in": roles });
        }
        if let Some(active) = self.active {
            filter.insert("active", active);
        }
        if let Some(pattern) = &self.search {
            filter.insert(
                "$or",
                vec![
                    doc! { "name": { "$regex": pattern, "$options": "i" } },
                    doc! { "email": { "$regex": pattern, "$options": "i" } },
                ],
            );
        }
        filter
    }
}

const DUPLICATE_EMAIL: &str = "an account with this e-mail address already exists";

pub struct Users {
    store: Store<UserRecord>,
}

impl Users {
    pub fn new(db: &Db) -> Self {
        Self {
            store: Store::new(db),
        }
    }

    /// Puts an account back as it was (when its audit entry could not be written).
    pub async fn restore(&self, record: &UserRecord) -> DbResult<()> {
        self.store.restore(record).await
    }

    pub async fn get(&self, id: ObjectId) -> DbResult<Option<UserRecord>> {
        self.store.get(id).await
    }

    pub async fn find_by_email(&self, email: &Email) -> DbResult<Option<UserRecord>> {
        self.store.find_one(doc! { "email": email.as_str() }).await
    }

    pub async fn create(&self, input: UserForCreate) -> DbResult<UserRecord> {
        self.create_with_id(ObjectId::new(), input).await
    }

    /// Creates an account under an id chosen beforehand (an audited write's).
    pub async fn create_with_id(&self, id: ObjectId, input: UserForCreate) -> DbResult<UserRecord> {
        let now = DateTime::now();
        let record = UserRecord {
            id,
            email: input.email.as_str().to_string(),
            name: input.name,
            role: input.role,
            department: input.department,
            phone: input.phone,
            active: true,
            password_hash: input.password_hash,
            last_login_at: None,
            sessions_since: None,
            ended_sessions: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        self.store.insert(&record, DUPLICATE_EMAIL).await?;
        Ok(record)
    }

    /// Applies `change` and returns the account after it.
    pub async fn update(
        &self,
        id: ObjectId,
        change: &UserForUpdate,
        stamp: DateTime,
    ) -> DbResult<Option<UserRecord>> {
        let mut set = doc! { "updatedAt": stamp };
        if let Some(name) = &change.name {
            set.insert("name", name);
        }
        if let Some(role) = change.role {
            set.insert("role", bson::to_bson(&role)?);
        }
        if let Some(department) = &change.department {
            set.insert("department", department.clone());
        }
        if let Some(phone) = &change.phone {
            set.insert("phone", phone.clone());
        }
        if let Some(hash) = &change.password_hash {
            set.insert("passwordHash", hash);
        }
        self.store.set(id, set, DUPLICATE_EMAIL).await
    }

    pub async fn set_active(
        &self,
        id: ObjectId,
        active: bool,
        stamp: DateTime,
    ) -> DbResult<Option<UserRecord>> {
        self.store
            .set(
                id,
                doc! { "active": active, "updatedAt": stamp },
                DUPLICATE_EMAIL,
            )
            .await
    }

    /// A new password (its hash), without the audited path: the caller
    /// audits the change without the hash.
    pub async fn set_password(&self, id: ObjectId, hash: &str) -> DbResult<()> {
        self.store
            .collection()
            .update_one(
                doc! { "_id": id },
                doc! { "$set": { "passwordHash": hash, "updatedAt": DateTime::now() } },
            )
            .await?;
        Ok(())
    }

    /// Ends every session of the account: access tokens issued before now
    /// are refused from here on.
    pub async fn end_all_sessions(&self, id: ObjectId) -> DbResult<()> {
        self.store
            .collection()
            .update_one(
                doc! { "_id": id },
                doc! { "$set": { "sessionsSince": DateTime::now(), "endedSessions": [] } },
            )
            .await?;
        Ok(())
    }

    /// Ends one session of the account until `until` (when its access
    /// tokens expire), forgetting ended sessions whose tokens have expired.
    pub async fn end_session(&self, id: ObjectId, session: &str, until: DateTime) -> DbResult<()> {
        let Some(user) = self.get(id).await? else {
            return Ok(());
        };
        let now = DateTime::now();
        let mut ended: Vec<EndedSession> = user
            .ended_sessions
            .into_iter()
            .filter(|e| e.until > now && e.id != session)
            .collect();
        ended.push(EndedSession {
            id: session.to_string(),
            until,
        });
        self.store
            .collection()
            .update_one(
                doc! { "_id": id },
                doc! { "$set": { "endedSessions": bson::to_bson(&ended)? } },
            )
            .await?;
        Ok(())
    }

    pub async fn record_login(&self, id: ObjectId) -> DbResult<()> {
        self.store
            .collection()
            .update_one(
                doc! { "_id": id },
                doc! { "$set": { "lastLoginAt": DateTime::now() } },
            )
            .await?;
        Ok(())
    }
}

/// Every signed-in caller may load a colleague (the API shows them only
/// `id` and `name`).
impl crate::db::model::Model for UserRecord {
    const KIND: crate::domain::NodeKind = crate::domain::NodeKind::User;
    /// Staff are people too: their contact details stay off the event
    /// channel and out of webhooks unless granted.
    const PERSONAL: &'static [&'static str] = &["name", "email", "phone", "department"];
    const PUBLIC: &'static [&'static str] = &["role", "active"];
    const SENSITIVE: &'static [&'static str] = &["passwordHash"];
    const SECRET: &'static [&'static str] = &["passwordHash"];
    const INTERNAL: &'static [&'static str] = &["sessionsSince", "endedSessions"];
    const UNAUDITED: &'static [&'static str] = &["sessionsSince", "endedSessions"];
    /// Lists of users read the guarded fields of others: only ADMIN and
    /// MANAGER (a person reads their own through `me`, not through a list).
    const READERS: &'static [(&'static str, &'static [Role])] = &[
        ("email", MANAGERS),
        ("role", MANAGERS),
        ("department", MANAGERS),
        ("phone", MANAGERS),
        ("active", MANAGERS),
        ("lastLoginAt", MANAGERS),
        ("createdAt", MANAGERS),
        ("updatedAt", MANAGERS),
        ("passwordHash", &[]),
    ];
    type Order = super::UserOrderField;

    fn extra_indexes() -> Vec<(&'static str, Document, bool)> {
        vec![
            ("email_unique", bson::doc! { "email": 1 }, true),
            ("role_active", bson::doc! { "role": 1, "active": 1 }, false),
        ]
    }
}

impl Db {
    /// The users collection's own operations.
    pub fn users(&self) -> Users {
        Users::new(self)
    }
}
