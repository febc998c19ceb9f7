//! API keys for partner systems (ADMIN): `createApiKey` shows the key once,
//! `apiKeys` lists them with their use counts, `revokeApiKey` ends one at
//! once on every instance. Creation and revocation are audited (without
//! the key). A key is sent as `Authorization: ApiKey alw_…` or
//! `X-Api-Key`, and in `connection_init` (`apiKey`) on websockets.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use bson::DateTime as BsonDateTime;
use bson::oid::ObjectId;

use crate::db::api_keys::{ApiKeyRecord, ApiKeys, new_key};
use crate::domain::Role;
use crate::domain::scopes::Scopes;
use crate::error::ApiError;
use crate::events::Event;
use crate::graphql::context::{CallerExt, ContextExt};
use crate::graphql::enums::Role as RoleValue;
use crate::graphql::guards::{ADMIN, RoleGuard};
use crate::graphql::scalars::DateTime;
use crate::models::audit_log_entry::changes::Change;
use crate::models::audit_log_entry::request_api::audit;

/// A partner system's key (never its secret).
#[derive(SimpleObject)]
pub struct ApiKey {
    /// The key's id (for `revokeApiKey`), also the part after `alw_`.
    pub id: ID,
    /// What it is for.
    pub name: String,
    /// What it may do (`assets:read`, ...).
    pub scopes: Vec<String>,
    /// The most it may do: the role its guards see.
    pub role: RoleValue,
    /// When it was made.
    pub created_at: DateTime,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime>,
    /// When it was last used (stored every few seconds).
    pub last_used_at: Option<DateTime>,
    /// How many requests it made (stored every few seconds).
    pub uses: i64,
}

impl From<ApiKeyRecord> for ApiKey {
    fn from(record: ApiKeyRecord) -> Self {
        Self {
            id: ID(record.id.to_hex()),
            name: record.name,
            scopes: record.scopes,
            role: record.role.into(),
            created_at: record.created_at.into(),
            expires_at: record.expires_at.map(Into::into),
            revoked_at: record.revoked_at.map(Into::into),
            last_used_at: record.last_used_at.map(Into::into),
            uses: record.uses,
        }
    }
}

/// A new key.
#[derive(InputObject)]
pub struct CreateApiKeyInput {
    /// What it is for (the partner system).
    name: String,
    /// What it may do; see `apiKeyScopes`.
    scopes: Vec<String>,
    /// The most it may do (MANAGER, THERAPIST or USER); USER when absent.
    role: Option<RoleValue>,
    /// When it stops working; never when absent.
    expires_at: Option<DateTime>,
}

/// A key just made, with the key itself, shown this once.
#[derive(SimpleObject)]
pub struct CreatedApiKey {
    /// Send as `Authorization: ApiKey <key>`; it is not shown again.
    pub key: String,
    /// The key as `apiKeys` lists it.
    pub api_key: ApiKey,
}

#[derive(Default)]
pub struct ApiKeyQuery;

#[Object]
impl ApiKeyQuery {
    /// Every API key, newest first (ADMIN).
    #[graphql(guard = "RoleGuard::new(ADMIN)")]
    async fn api_keys(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiKey>> {
        let keys = ApiKeys::new(&ctx.app()?.db).list().await?;
        Ok(keys.into_iter().map(ApiKey::from).collect())
    }

    /// The scopes a key can hold.
    #[graphql(guard = "RoleGuard::new(ADMIN)")]
    async fn api_key_scopes(&self) -> Vec<&'static str> {
        crate::domain::scopes::ALL.to_vec()
    }
}

#[derive(Default)]
pub struct ApiKeyMutation;

#[Object]
impl ApiKeyMutation {
    /// Makes a key for a partner system (ADMIN); the key is shown once.
    #[graphql(guard = "RoleGuard::new(ADMIN)")]
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The key.")] input: CreateApiKeyInput,
    ) -> async_graphql::Result<CreatedApiKey> {
        let name = crate::domain::text::required(&input.name, 100)
            .map_err(|m| ApiError::bad_input("input.name", format!("the name {m}")))?;
        let scopes =
            Scopes::parse(&input.scopes).map_err(|m| ApiError::bad_input("input.scopes", m))?;
        let role: Role = input.role.map(Into::into).unwrap_or(Role::User);
        if role == Role::Admin {
            return Err(
                ApiError::bad_input("input.role", "a key's role is at most MANAGER").into(),
            );
        }
        let expires_at: Option<BsonDateTime> = input.expires_at.map(Into::into);
        if expires_at.is_some_and(|t| t <= BsonDateTime::now()) {
            return Err(
                ApiError::bad_input("input.expiresAt", "the key would be expired already").into(),
            );
        }
        let record = make(
            ctx.caller()?.principal()?.id,
            name,
            scopes,
            role,
            expires_at,
        );
        let (key, hash) = new_key(record.id);
        let record = ApiKeyRecord { hash, ..record };
        ApiKeys::new(&ctx.app()?.db).insert(&record).await?;
        audit(
            ctx,
            "apikey.create",
            "ApiKey",
            Some(record.id.to_hex()),
            described(&record),
        )
        .await?;
        Ok(CreatedApiKey {
            key,
            api_key: record.into(),
        })
    }

    /// Revokes a key at once, on every instance (ADMIN).
    #[graphql(guard = "RoleGuard::new(ADMIN)")]
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The key's id.")] id: ID,
    ) -> async_graphql::Result<ApiKey> {
        let id = ObjectId::parse_str(id.as_str()).map_err(|_| ApiError::NotFound)?;
        let app = ctx.app()?;
        let revoked = revoke(app, id).await?.ok_or(ApiError::NotFound)?;
        audit(ctx, "apikey.revoke", "ApiKey", Some(id.to_hex()), vec![]).await?;
        Ok(revoked.into())
    }
}

/// A key's record before its hash is known.
pub fn make(
    by: ObjectId,
    name: String,
    scopes: Scopes,
    role: Role,
    expires_at: Option<BsonDateTime>,
) -> ApiKeyRecord {
    ApiKeyRecord {
        id: ObjectId::new(),
        name,
        hash: String::new(),
        scopes: scopes.names().into_iter().map(str::to_string).collect(),
        role,
        created_by: Some(by),
        created_at: BsonDateTime::now(),
        expires_at,
        revoked_at: None,
        last_used_at: None,
        uses: 0,
    }
}

/// What a key's audit entry says of it (never the key).
pub fn described(record: &ApiKeyRecord) -> Vec<Change> {
    vec![
        Change::new("name", bson::Bson::Null, record.name.clone().into()),
        Change::new(
            "scopes",
            bson::Bson::Null,
            bson::Bson::Array(record.scopes.iter().map(|s| s.clone().into()).collect()),
        ),
        Change::new("role", bson::Bson::Null, record.role.as_str().into()),
    ]
}

/// Revokes a key and tells every instance to forget it.
pub async fn revoke(
    app: &crate::state::AppState,
    id: ObjectId,
) -> crate::db::DbResult<Option<ApiKeyRecord>> {
    let revoked = ApiKeys::new(&app.db).revoke(id).await?;
    app.accounts.forget(id);
    app.bus.publish(Event::AccountChanged { user: id });
    Ok(revoked)
}
