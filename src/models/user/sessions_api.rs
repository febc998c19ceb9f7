//! Sessions that end when they should: `sessions` and `revokeSession` let
//! a person see where they are signed in and end a session; `changePassword`
//! lets them change their own password. Ending one session revokes its
//! refresh tokens, refuses its access tokens from then on and closes its
//! websockets (4403), on every instance; a password change or reset, a role
//! change and a deactivation end every session of the account at once.

use async_graphql::{Context, ID, Object, SimpleObject};
use bson::DateTime as BsonDateTime;

use super::record::UserRecord;
use super::sessions::{SessionRecord, Sessions};
use super::sign_in_api::{AuthPayload, start_session};
use crate::auth::password;
use crate::auth::throttle::LoginThrottle;
use crate::error::{ApiError, ApiResult};
use crate::events::Event;
use crate::graphql::context::{CallerExt, ContextExt};
use crate::graphql::guards::{ANY_ROLE, RoleGuard};
use crate::graphql::scalars::DateTime;
use crate::models::audit_log_entry::request_api::audit;
use crate::state::AppState;

/// Where a person is signed in.
#[derive(SimpleObject)]
pub struct Session {
    /// The session's id (for `revokeSession`).
    pub id: ID,
    /// The client it was opened from (its `User-Agent`), when it said.
    pub device: Option<String>,
    /// The address it was last used from.
    pub address: String,
    /// When it was opened (signed in).
    pub created_at: DateTime,
    /// When its tokens were last renewed.
    pub last_used_at: DateTime,
    /// Whether this request belongs to it.
    pub current: bool,
}

impl Session {
    fn of(record: SessionRecord, current: Option<&str>) -> Self {
        Self {
            current: current == Some(record.id.as_str()),
            id: ID(record.id),
            device: record.device,
            address: record.address,
            created_at: record.created_at.into(),
            last_used_at: record.last_used_at.into(),
        }
    }
}

/// Ends one session of `user`: its refresh tokens, its access tokens (from
/// now on, on every instance) and its websockets. Whether it was live.
pub(crate) async fn end_session(
    app: &AppState,
    user: UserRecord,
    session: &str,
) -> ApiResult<bool> {
    let revoked = app.db.refresh_tokens().revoke_family(session).await?;
    let ended = Sessions::new(&app.db).end(session).await?;
    let until = BsonDateTime::from_millis(
        BsonDateTime::now()
            .timestamp_millis()
            .saturating_add(app.tokens.access_ttl_secs().saturating_mul(1000) + 60_000),
    );
    app.db.users().end_session(user.id, session, until).await?;
    app.accounts.forget(user.id);
    app.bus.publish(Event::SessionEnded {
        user: user.id,
        session: session.to_string(),
    });
    Ok(revoked || ended)
}

/// Ends every session of an account at once (password, role or status
/// changes): refresh tokens revoked, access tokens issued before refused,
/// websockets closed, on every instance.
pub(crate) async fn end_every_session(app: &AppState, user: bson::oid::ObjectId) -> ApiResult<()> {
    app.db.users().end_all_sessions(user).await?;
    app.db.refresh_tokens().revoke_user(user).await?;
    Sessions::new(&app.db).end_all(user).await?;
    app.accounts.forget(user);
    app.bus.publish(Event::AccountChanged { user });
    Ok(())
}

#[derive(Default)]
pub struct SessionQuery;

#[Object]
impl SessionQuery {
    /// The signed-in person's live sessions, the most recently used first.
    #[graphql(guard = "RoleGuard::new(ANY_ROLE)")]
    async fn sessions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Session>> {
        let me = ctx.caller()?.principal()?.id;
        let current = ctx.request()?.session.as_deref();
        let live = Sessions::new(&ctx.app()?.db).live(me).await?;
        Ok(live.into_iter().map(|s| Session::of(s, current)).collect())
    }
}

#[derive(Default)]
pub struct SessionMutation;

#[Object]
impl SessionMutation {
    /// Ends one of the signed-in person's sessions (another device, or this
    /// one): its tokens stop working and its websockets close. False when it
    /// had ended already; `NOT_FOUND` when it is not theirs.
    #[graphql(guard = "RoleGuard::new(ANY_ROLE)")]
    async fn revoke_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The session's id, from `sessions`.")] id: ID,
    ) -> async_graphql::Result<bool> {
        let me = ctx.caller()?.principal()?.id;
        let app = ctx.app()?;
        let session = Sessions::new(&app.db).get(id.as_str()).await?;
        let Some(session) = session.filter(|s| s.user_id == me) else {
            return Err(ApiError::NotFound.into());
        };
        let user = app.db.users().get(me).await?.ok_or(ApiError::NotFound)?;
        let ended = end_session(app, user, &session.id).await?;
        if ended {
            audit(
                ctx,
                "auth.revoke_session",
                "User",
                Some(me.to_hex()),
                vec![],
            )
            .await?;
        }
        Ok(ended)
    }

    /// Changes the signed-in person's password. Every session of the account
    /// ends (other devices sign in again); the answer holds the tokens of a
    /// new session for this one. A wrong current password counts as a
    /// failed sign-in.
    #[graphql(guard = "RoleGuard::new(ANY_ROLE)")]
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The password in use now.")] current_password: String,
        #[graphql(desc = "The new password (12 characters or more).")] new_password: String,
    ) -> async_graphql::Result<AuthPayload> {
        let me = ctx.caller()?.principal()?.id;
        let app = ctx.app()?;
        let request = ctx.request()?;
        let user = app.db.users().get(me).await?.ok_or(ApiError::NotFound)?;
        let throttle = LoginThrottle::new(&app.cache, &app.settings.auth, app.db.name());
        throttle
            .attempt(&user.email, &request.client_address)
            .await
            .map_err(ApiError::from)?;
        let matches = password::verify(current_password, user.password_hash.clone())
            .await
            .map_err(ApiError::from)?;
        if !matches {
            return Err(
                ApiError::bad_input("currentPassword", "the current password is wrong").into(),
            );
        }
        throttle
            .succeeded(&user.email, &request.client_address)
            .await;
        password::check_strength(&new_password)
            .map_err(|m| ApiError::bad_input("newPassword", m))?;
        let hash = password::hash(new_password)
            .await
            .map_err(ApiError::internal)?;
        app.db.users().set_password(me, &hash).await?;
        end_every_session(app, me).await?;
        audit(
            ctx,
            "user.change_password",
            "User",
            Some(me.to_hex()),
            vec![],
        )
        .await?;
        let user = app.db.users().get(me).await?.ok_or(ApiError::NotFound)?;
        Ok(start_session(app, request, user).await?)
    }
}
