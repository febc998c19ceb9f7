//! The `users` collection: staff accounts. E-mails are stored lower-cased
//! under a unique index; accounts are deactivated, never deleted.

use bson::oid::ObjectId;
use bson::{DateTime, Document, doc};
use futures::TryStreamExt;
use mongodb::Collection;
use mongodb::options::{FindOneAndUpdateOptions, ReturnDocument};
use serde::{Deserialize, Serialize};

use super::page::{self, Page, Sort, Window};
use super::{Db, DbError, DbResult};
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
    pub created_at: DateTime,
    pub updated_at: DateTime,
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
    fn to_document(&self) -> Document {
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

pub struct Users {
    collection: Collection<Document>,
    max_time: std::time::Duration,
}

impl Users {
    pub fn new(db: &Db) -> Self {
        Self {
            collection: db.collection(COLLECTION),
            max_time: db.max_time(),
        }
    }

    pub async fn get(&self, id: ObjectId) -> DbResult<Option<UserRecord>> {
        self.find_one(doc! { "_id": id }).await
    }

    pub async fn find_by_email(&self, email: &Email) -> DbResult<Option<UserRecord>> {
        self.find_one(doc! { "email": email.as_str() }).await
    }

    async fn find_one(&self, filter: Document) -> DbResult<Option<UserRecord>> {
        let found = self
            .collection
            .find_one(filter)
            .max_time(self.max_time)
            .await?;
        Ok(found.map(bson::from_document).transpose()?)
    }

    /// Loads many accounts in one command (the dataloader's batch).
    pub async fn get_many(&self, ids: &[ObjectId]) -> DbResult<Vec<UserRecord>> {
        let limit = i64::try_from(ids.len()).map_err(|e| DbError::Other(e.into()))?;
        let docs: Vec<Document> = self
            .collection
            .find(doc! { "_id": { "$in": ids } })
            .limit(-limit.max(1))
            .max_time(self.max_time)
            .await?
            .try_collect()
            .await?;
        docs.into_iter()
            .map(|d| bson::from_document(d).map_err(DbError::from))
            .collect()
    }

    pub async fn page(
        &self,
        filter: &UserFilter,
        sort: Sort,
        window: Window,
    ) -> DbResult<Page<UserRecord>> {
        page::fetch(
            &self.collection,
            filter.to_document(),
            sort,
            window,
            self.max_time,
        )
        .await
    }

    pub async fn count(&self, filter: &UserFilter) -> DbResult<u64> {
        page::count(&self.collection, filter.to_document(), self.max_time).await
    }

    pub async fn create(&self, input: UserForCreate) -> DbResult<UserRecord> {
        let now = DateTime::now();
        let record = UserRecord {
            id: ObjectId::new(),
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
        match self
            .collection
            .insert_one(bson::to_document(&record)?)
            .await
        {
            Ok(_) => Ok(record),
            Err(e) if super::duplicate_key(&e) => Err(DbError::Duplicate(
                "an account with this e-mail address already exists".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies `change` and returns the account after it.
    pub async fn update(
        &self,
        id: ObjectId,
        change: &UserForUpdate,
    ) -> DbResult<Option<UserRecord>> {
        let mut set = doc! { "updatedAt": DateTime::now() };
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
        self.find_and_set(id, set).await
    }

    pub async fn set_active(&self, id: ObjectId, active: bool) -> DbResult<Option<UserRecord>> {
        self.find_and_set(id, doc! { "active": active, "updatedAt": DateTime::now() })
            .await
    }

    pub async fn record_login(&self, id: ObjectId) -> DbResult<()> {
        self.collection
            .update_one(
                doc! { "_id": id },
                doc! { "$set": { "lastLoginAt": DateTime::now() } },
            )
            .await?;
        Ok(())
    }

    async fn find_and_set(&self, id: ObjectId, set: Document) -> DbResult<Option<UserRecord>> {
        let options = FindOneAndUpdateOptions::builder()
            .return_document(ReturnDocument::After)
            .max_time(self.max_time)
            .build();
        let found = self
            .collection
            .find_one_and_update(doc! { "_id": id }, doc! { "$set": set })
            .with_options(options)
            .await?;
        Ok(found.map(bson::from_document).transpose()?)
    }
}
