//! Sign-in: `login`, `refreshToken` (rotating; reuse revokes the family)
//! and `logout`, on the user model's share of the mutations.

use async_graphql::{Context, Object, SimpleObject};
use bson::DateTime as BsonDateTime;

use super::api::User;
use super::record::UserRecord;
use super::sessions::{SessionRecord, Sessions};
use crate::auth::password;
use crate::auth::throttle::LoginThrottle;
use crate::auth::tokens::{hash_refresh_token, new_refresh_token};
use crate::db::refresh_tokens::{Redeemed, RefreshTokenRecord};
use crate::domain::{Actor, Email};
use crate::error::{ApiError, ApiResult};
use crate::graphql::context::ContextExt;
use crate::models::analytics_event::record::Analytics;
use crate::models::audit_log_entry::entry::NewEntry;
use crate::models::audit_log_entry::request_api::audit;
use crate::state::AppState;

/// Tokens for a signed-in session.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Send as `Authorization: Bearer <accessToken>`.
    pub access_token: String,
    /// Exchange for new tokens with `refreshToken`; each works once.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The signed-in account.
    pub user: User,
}

const BAD_CREDENTIALS: &str = "the e-mail address or password is wrong";

/// Audits a lockout of sign-ins to an account from one address, so ADMIN
/// sees it in the audit log (`auth.lockout`, the address in its change).
async fn lockout(
    app: &crate::state::AppState,
    request: &crate::graphql::context::RequestContext,
    email: &str,
) {
    let account = match Email::parse(email) {
        Ok(email) => app.db.users().find_by_email(&email).await.ok().flatten(),
        Err(_) => None,
    };
    let entry = NewEntry {
        id: None,
        actor: Actor::anonymous(),
        action: "auth.lockout".into(),
        entity_type: "User".into(),
        entity_id: account.map(|a| a.id.to_hex()),
        changes: vec![crate::models::audit_log_entry::changes::Change::new(
            "address",
            bson::Bson::Null,
            bson::Bson::String(request.client_address.clone()),
        )],
        request_id: Some(request.request_id.clone()),
    };
    if let Err(error) = app.db.audit().append(entry).await {
        tracing::warn!(%error, "auditing a sign-in lockout failed");
    }
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Signs in with e-mail and password. Failed attempts are throttled per
    /// account and per client address.
    async fn login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account's e-mail address, in any case.")] email: String,
        #[graphql(desc = "The account's password.")] password: String,
    ) -> async_graphql::Result<AuthPayload> {
        let app = ctx.app()?;
        let request = ctx.request()?;
        let canonical = email.trim().to_lowercase();
        let throttle = LoginThrottle::new(&app.cache, &app.settings.auth, app.db.name());
        if let Err(refused) = throttle.attempt(&canonical, &request.client_address).await {
            if throttle
                .just_locked(&canonical, &request.client_address)
                .await
            {
                lockout(app, request, &canonical).await;
            }
            return Err(ApiError::from(refused).into());
        }

        let account = match Email::parse(&email) {
            Ok(email) => app
                .db
                .users()
                .find_by_email(&email)
                .await
                .map_err(ApiError::from)?,
            Err(_) => None,
        };
        let stored = account
            .as_ref()
            .map(|a| a.password_hash.clone())
            .unwrap_or_else(|| password::decoy_hash().to_string());
        let matches = password::verify(password, stored)
            .await
            .map_err(ApiError::from)?;
        let user = match account {
            Some(user) if matches && user.active => user,
            _ => {
                metrics::counter!("alawael_login_failures_total").increment(1);
                return Err(ApiError::Unauthenticated(BAD_CREDENTIALS.into()).into());
            }
        };
        throttle
            .succeeded(&canonical, &request.client_address)
            .await;
        app.db
            .users()
            .record_login(user.id)
            .await
            .map_err(ApiError::from)?;
        app.db
            .audit()
            .append(NewEntry {
                id: None,
                actor: Actor::user(user.id),
                action: "auth.login".into(),
                entity_type: "User".into(),
                entity_id: Some(user.id.to_hex()),
                changes: vec![],
                request_id: Some(request.request_id.clone()),
            })
            .await
            .map_err(ApiError::from)?;
        Analytics::new(&app.db)
            .raise(&app.bus, "auth.login", Some(user.id))
            .await;
        Ok(start_session(app, request, user).await?)
    }

    /// Exchanges a refresh token for new tokens. The old one stops working;
    /// presenting it again ends every session of that sign-in.
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The refresh token from `login` or the last refresh.")]
        refresh_token: String,
    ) -> async_graphql::Result<AuthPayload> {
        let app = ctx.app()?;
        let invalid =
            || ApiError::Unauthenticated("the refresh token is invalid or expired".into());
        let hash = hash_refresh_token(&refresh_token);
        match app
            .db
            .refresh_tokens()
            .redeem(&hash)
            .await
            .map_err(ApiError::from)?
        {
            Redeemed::Fresh(record) => {
                let user = app
                    .db
                    .users()
                    .get(record.user_id)
                    .await
                    .map_err(ApiError::from)?;
                match user {
                    Some(user) if user.active => {
                        let payload = issue(app, user, record.family.clone()).await?;
                        let expires = refresh_expiry(app);
                        Sessions::new(&app.db)
                            .used(&record.family, &ctx.request()?.client_address, expires)
                            .await
                            .map_err(ApiError::from)?;
                        Ok(payload)
                    }
                    _ => Err(invalid().into()),
                }
            }
            Redeemed::Reused(record) => {
                tracing::warn!(family = %record.family, user = %record.user_id, "refresh token reused; family revoked");
                app.db
                    .audit()
                    .append(NewEntry {
                        id: None,
                        actor: Actor::user(record.user_id),
                        action: "auth.refresh_token_reused".into(),
                        entity_type: "User".into(),
                        entity_id: Some(record.user_id.to_hex()),
                        changes: vec![],
                        request_id: Some(ctx.request()?.request_id.clone()),
                    })
                    .await
                    .map_err(ApiError::from)?;
                Err(invalid().into())
            }
            Redeemed::Unknown => Err(invalid().into()),
        }
    }

    /// Ends the session that holds this refresh token. True when it was live.
    async fn logout(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The refresh token of the session to end.")] refresh_token: String,
    ) -> async_graphql::Result<bool> {
        let app = ctx.app()?;
        let hash = hash_refresh_token(&refresh_token);
        let Some(record) = app
            .db
            .refresh_tokens()
            .find(&hash)
            .await
            .map_err(ApiError::from)?
        else {
            return Ok(false);
        };
        // The session ends whole: its refresh tokens, its access tokens
        // (from now on, on every instance) and its websockets.
        let revoked = match app
            .db
            .users()
            .get(record.user_id)
            .await
            .map_err(ApiError::from)?
        {
            Some(user) => super::sessions_api::end_session(app, user, &record.family).await?,
            None => app
                .db
                .refresh_tokens()
                .revoke_family(&record.family)
                .await
                .map_err(ApiError::from)?,
        };
        if revoked {
            audit(
                ctx,
                "auth.logout",
                "User",
                Some(record.user_id.to_hex()),
                vec![],
            )
            .await?;
            Analytics::new(&app.db)
                .raise(&app.bus, "auth.logout", Some(record.user_id))
                .await;
        }
        Ok(revoked)
    }
}

/// When a refresh token issued now stops working.
fn refresh_expiry(app: &AppState) -> BsonDateTime {
    let ttl = i64::try_from(app.settings.auth.refresh_token_ttl_secs).unwrap_or(i64::MAX / 2_000);
    BsonDateTime::from_chrono(chrono::Utc::now() + chrono::Duration::seconds(ttl))
}

/// Opens a new session for `user` (a sign-in, or a password change): its
/// row, with the client's device and address, and its first tokens.
pub(crate) async fn start_session(
    app: &AppState,
    request: &crate::graphql::context::RequestContext,
    user: UserRecord,
) -> ApiResult<AuthPayload> {
    let family = uuid::Uuid::new_v4().to_string();
    let now = BsonDateTime::now();
    Sessions::new(&app.db)
        .start(&SessionRecord {
            id: family.clone(),
            user_id: user.id,
            device: request.user_agent.clone(),
            address: request.client_address.clone(),
            created_at: now,
            last_used_at: now,
            expires_at: refresh_expiry(app),
            ended_at: None,
        })
        .await?;
    issue(app, user, family).await
}

async fn issue(app: &AppState, user: UserRecord, family: String) -> ApiResult<AuthPayload> {
    let access_token = app
        .tokens
        .issue(user.id, user.role, &family)
        .map_err(ApiError::internal)?;
    let (refresh_token, hash) = new_refresh_token();
    let now = chrono::Utc::now();
    let ttl = i64::try_from(app.settings.auth.refresh_token_ttl_secs).unwrap_or(i64::MAX / 2_000);
    app.db
        .refresh_tokens()
        .insert(&RefreshTokenRecord {
            hash,
            family,
            user_id: user.id,
            expires_at: BsonDateTime::from_chrono(now + chrono::Duration::seconds(ttl)),
            created_at: BsonDateTime::from_chrono(now),
            used_at: None,
            revoked_at: None,
        })
        .await?;
    Ok(AuthPayload {
        access_token,
        refresh_token,
        expires_in: app.tokens.access_ttl_secs(),
        user: User::own(user),
    })
}
