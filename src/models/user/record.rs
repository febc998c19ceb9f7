//! The `users` collection: staff accounts. E-mails are stored lower-cased
//! under a unique index; accounts are deactivated, never deleted.

use crate::domain::roles::MANAGERS;
use bson::oid::ObjectId;
use bson::{DateTime, Document, RawDocument, doc};
use serde::{Deserialize, Serialize};

use crate::db::store::{Record, Store};
use crate::db::{Db, DbResult, raw};
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
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub created_at: DateTime,
    #[serde(deserialize_with = "crate::db::dates::read")]
    pub updated_at: DateTime,
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

crate::order_fields! {
    /// Orders of `users`.
    pub enum UserOrder {
        Name = "NAME" => "name",
        CreatedAt = "CREATED_AT" => "createdAt",
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
    type Order = UserOrder;

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
