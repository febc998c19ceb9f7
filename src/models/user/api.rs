//! Users: the `User` type, `users`/`user` queries, and account mutations.
//! Everyone signed in may see a colleague's id and name; the rest of an
//! account is for its owner, ADMIN and MANAGER.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};
use bson::oid::ObjectId;

use super::record::{UserFilter as DbUserFilter, UserForCreate, UserForUpdate, UserRecord};
pub use super::{UserOrder, UserOrderField};
use crate::auth::password;
use crate::db::store::Store;
use crate::domain::{Email, GlobalId, NodeKind, Role, text};
use crate::error::{ApiError, ApiResult, Found};
use crate::events::ChangeKind;
use crate::graphql::context::{CallerExt, ContextExt};
use crate::graphql::enums::Role as RoleValue;
use crate::graphql::guards::{ANY_ROLE, MANAGERS, RoleGuard, SelfOrManagers};
use crate::graphql::inputs::{required, search_pattern};
use crate::graphql::model;
use crate::graphql::pagination::{Connection, Listed, connection_cost};
use crate::graphql::scalars::DateTime;

/// A staff account. `id` and `name` are visible to everyone signed in; the
/// other fields to the account's owner, ADMIN and MANAGER.
#[derive(Clone)]
pub struct User {
    pub record: Arc<UserRecord>,
    /// Handed to the account's owner (sign-in, `me`): every field is theirs to read.
    pub own: bool,
}

impl User {
    pub fn new(record: UserRecord) -> Self {
        Self {
            record: Arc::new(record),
            own: false,
        }
    }

    /// The caller's own account.
    pub fn own(record: UserRecord) -> Self {
        Self {
            own: true,
            ..Self::new(record)
        }
    }

    pub fn global_id(&self) -> ID {
        ID(GlobalId::new(NodeKind::User, self.record.id).encode())
    }
}

impl crate::graphql::rows::Plain for User {
    fn plain(&self, field: &str) -> Option<crate::graphql::rows::Scalar<'_>> {
        use crate::graphql::rows::Scalar;
        match field {
            "id" => Some(Scalar::Id(GlobalId::new(NodeKind::User, self.record.id))),
            "name" => Some(Scalar::Text(&self.record.name)),
            _ => None,
        }
    }
}

impl Listed for User {
    const NAME: &'static str = <Self as crate::graphql::model::ApiModel>::KIND.name();
}

impl crate::graphql::model::ApiModel for User {
    type Record = UserRecord;
    fn wrap(record: Arc<UserRecord>) -> Self {
        Self { record, own: false }
    }
    fn record(&self) -> &UserRecord {
        &self.record
    }
}

/// A staff account. `id` and `name` are visible to everyone signed in; the
/// other fields to the account's owner, ADMIN and MANAGER.
#[Object(cache_control(max_age = 60, private))]
impl User {
    /// The account's global id.
    pub async fn id(&self) -> ID {
        self.global_id()
    }

    /// The person's full name.
    async fn name(&self) -> &str {
        &self.record.name
    }

    /// Sign-in address, lower case.
    #[graphql(guard = "SelfOrManagers(self.record.id, self.own)")]
    async fn email(&self) -> &str {
        &self.record.email
    }

    /// What the account may do.
    #[graphql(guard = "SelfOrManagers(self.record.id, self.own)")]
    async fn role(&self) -> RoleValue {
        self.record.role.into()
    }

    /// Department or team.
    #[graphql(guard = "SelfOrManagers(self.record.id, self.own)")]
    async fn department(&self) -> Option<&str> {
        self.record.department.as_deref()
    }

    /// Work phone number.
    #[graphql(guard = "SelfOrManagers(self.record.id, self.own)")]
    async fn phone(&self) -> Option<&str> {
        self.record.phone.as_deref()
    }

    /// False once the account is deactivated; it can no longer sign in.
    #[graphql(guard = "SelfOrManagers(self.record.id, self.own)")]
    async fn active(&self) -> bool {
        self.record.active
    }

    /// When the account last signed in (never cached: signing in changes it
    /// without a write the cache hears of).
    #[graphql(
        guard = "SelfOrManagers(self.record.id, self.own)",
        cache_control(no_cache)
    )]
    async fn last_login_at(&self) -> Option<DateTime> {
        self.record.last_login_at.map(Into::into)
    }

    /// When the account was created.
    #[graphql(guard = "SelfOrManagers(self.record.id, self.own)")]
    async fn created_at(&self) -> DateTime {
        self.record.created_at.into()
    }

    /// When the account last changed.
    #[graphql(guard = "SelfOrManagers(self.record.id, self.own)")]
    async fn updated_at(&self) -> DateTime {
        self.record.updated_at.into()
    }
}

/// Which accounts `users` lists.
#[derive(InputObject, Default)]
pub struct UserFilter {
    /// Only these roles.
    role: Option<Vec<RoleValue>>,
    /// Only active (true) or deactivated (false) accounts.
    active: Option<bool>,
    /// Case-insensitive text found in the name or e-mail address.
    search: Option<String>,
}

/// A new account.
#[derive(InputObject)]
pub struct CreateUserInput {
    /// Sign-in address; must be unique (case-insensitive).
    email: String,
    /// Full name.
    name: String,
    /// MANAGER may create THERAPIST and USER accounts only.
    role: RoleValue,
    /// At least 12 characters.
    password: String,
    /// Department or team.
    department: Option<String>,
    /// Work phone number.
    phone: Option<String>,
}

/// Changes to an account; absent fields stay as they are, `null` clears
/// `department` and `phone`.
#[derive(InputObject)]
pub struct UpdateUserInput {
    /// Full name.
    name: MaybeUndefined<String>,
    /// New role; ADMIN only, or MANAGER between THERAPIST and USER.
    role: MaybeUndefined<RoleValue>,
    /// A new password (at least 12 characters).
    password: MaybeUndefined<String>,
    /// Department or team.
    department: MaybeUndefined<String>,
    /// Work phone number.
    phone: MaybeUndefined<String>,
}

/// Changes a signed-in user may make to their own account.
#[derive(InputObject)]
pub struct UpdateMeInput {
    /// Full name.
    name: MaybeUndefined<String>,
    /// Work phone number; `null` clears it.
    phone: MaybeUndefined<String>,
}

fn name_of(value: &str, field: &str) -> ApiResult<String> {
    text::required(value, 120).map_err(|m| ApiError::bad_input(field, format!("the name {m}")))
}

fn optional_text(
    value: MaybeUndefined<String>,
    field: &str,
    max: usize,
) -> ApiResult<Option<Option<String>>> {
    Ok(match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => {
            let v = text::optional(&v, max)
                .map_err(|m| ApiError::bad_input(field, format!("`{field}` {m}")))?;
            Some((!v.is_empty()).then_some(v))
        }
    })
}

/// Active accounts with one of `roles`, by global id, each once (at most
/// 50); anything else is `BAD_USER_INPUT` on `field`, naming `what`.
pub async fn staff(
    ctx: &Context<'_>,
    ids: &[ID],
    roles: &[Role],
    field: &str,
    what: &str,
) -> ApiResult<Vec<ObjectId>> {
    let bad = || ApiError::bad_input(field, format!("every id must be an active {what}"));
    let mut oids = Vec::with_capacity(ids.len());
    for id in ids {
        let oid = model::reference::<User>(id, field).map_err(|_| bad())?;
        if !oids.contains(&oid) {
            oids.push(oid);
        }
    }
    if oids.len() > 50 {
        return Err(ApiError::bad_input(field, "at most 50 people"));
    }
    if oids.is_empty() {
        return Ok(oids);
    }
    let found = Store::<UserRecord>::new(&ctx.app()?.db)
        .get_many(&oids)
        .await?;
    let ok = found
        .iter()
        .filter(|u| u.active && roles.contains(&u.role))
        .count();
    if ok != oids.len() {
        return Err(bad());
    }
    Ok(oids)
}

/// One active account with one of `roles` (see `staff`).
pub async fn staff_member(
    ctx: &Context<'_>,
    id: &ID,
    roles: &[Role],
    field: &str,
    what: &str,
) -> ApiResult<ObjectId> {
    let found = staff(ctx, std::slice::from_ref(id), roles, field, what).await?;
    found
        .first()
        .copied()
        .ok_or_else(|| ApiError::bad_input(field, format!("the id must be an active {what}")))
}

/// Reads a user id argument; a malformed id or one of another type is NOT_FOUND.
pub fn user_id(id: &ID) -> ApiResult<ObjectId> {
    GlobalId::decode_as(id.as_str(), NodeKind::User).ok_or(ApiError::NotFound)
}

#[derive(Default)]
pub struct UserQuery;

#[alawael_macros::connections]
#[Object]
impl UserQuery {
    /// The signed-in account.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let caller = ctx.caller()?.principal()?.clone();
        let record = ctx
            .app()?
            .db
            .users()
            .get(caller.id)
            .await
            .map_err(ApiError::from)?;
        Ok(User::own(record.ok_or_else(|| {
            ApiError::Unauthenticated("the account no longer exists".into())
        })?))
    }

    /// All accounts, a page at a time (ADMIN, MANAGER).
    // The four Relay arguments, a filter and an ordering are the public API.
    #[graphql(
        guard = "RoleGuard::new(MANAGERS)",
        complexity = "connection_cost(first, last, child_complexity)"
    )]
    async fn users(
        &self,
        ctx: &Context<'_>,
        page: PageArgs,
        #[graphql(desc = "Which accounts to list.")] filter: Option<UserFilter>,
        #[graphql(desc = "The ordering; by name when absent.")] order_by: Option<UserOrder>,
    ) -> async_graphql::Result<Connection<User>> {
        let filter = filter.unwrap_or_default();
        let filter = DbUserFilter {
            roles: crate::graphql::enums::stored(filter.role),
            active: filter.active,
            search: search_pattern(filter.search, "filter.search")?,
        };
        let args = page;
        Ok(crate::graphql::model::list(
            ctx,
            args,
            filter.to_document(),
            order_by.map(|o| (o.field, o.direction)),
        )
        .await?)
    }

    /// One account by id. Everyone signed in may read a colleague's name.
    #[graphql(guard = "RoleGuard::new(ANY_ROLE)")]
    async fn user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account's global id.")] id: ID,
    ) -> async_graphql::Result<User> {
        Ok(crate::graphql::model::one(ctx, &id).await?)
    }
}

#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    /// Creates an account (ADMIN any role; MANAGER THERAPIST and USER).
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to create.")] input: CreateUserInput,
    ) -> async_graphql::Result<User> {
        let caller = ctx.caller()?.principal()?.clone();
        let new_role: Role = input.role.into();
        if !caller.role.may_manage_role(new_role) {
            return Err(ApiError::Forbidden.into());
        }
        let email =
            Email::parse(&input.email).map_err(|m| ApiError::bad_input("input.email", m))?;
        let name = name_of(&input.name, "input.name")?;
        password::check_strength(&input.password)
            .map_err(|m| ApiError::bad_input("input.password", m))?;
        let department = optional_text(
            MaybeUndefined::from(input.department.map(Some)),
            "input.department",
            120,
        )?
        .flatten();
        let phone = optional_text(
            MaybeUndefined::from(input.phone.map(Some)),
            "input.phone",
            40,
        )?
        .flatten();
        let app = ctx.app()?;
        let password_hash = password::hash(input.password)
            .await
            .map_err(ApiError::internal)?;
        let id = ObjectId::new();
        let pending = crate::graphql::model::intend::<UserRecord>(
            ctx,
            ChangeKind::Created,
            id,
            None,
            None,
            "user.create",
        )
        .await?;
        let users = app.db.users();
        let (pending, record) = crate::graphql::model::attempt(ctx, pending, async {
            Ok(users
                .create_with_id(
                    id,
                    UserForCreate {
                        email,
                        name,
                        role: new_role,
                        department,
                        phone,
                        password_hash,
                    },
                )
                .await?)
        })
        .await?;
        Ok(crate::graphql::model::created(ctx, pending, record).await?)
    }

    /// Changes an account (ADMIN any; MANAGER THERAPIST and USER accounts).
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The global id of the object.")] id: ID,
        #[graphql(desc = "What to change.")] input: UpdateUserInput,
    ) -> async_graphql::Result<User> {
        let caller = ctx.caller()?.principal()?.clone();
        let id = user_id(&id)?;
        let app = ctx.app()?;
        let before = app.db.users().get(id).await.found()?;
        let role: Option<Role> = required(input.role, "input.role", |r| Ok(r.into()))?;
        if !caller.role.may_manage_role(before.role)
            || role.is_some_and(|r| !caller.role.may_manage_role(r))
        {
            return Err(ApiError::Forbidden.into());
        }
        if caller.id == id && role.is_some_and(|r| r != caller.role) {
            return Err(
                ApiError::bad_input("input.role", "you cannot change your own role").into(),
            );
        }
        let mut change = UserForUpdate {
            name: required(input.name, "input.name", |n| name_of(&n, "input.name"))?,
            role,
            department: optional_text(input.department, "input.department", 120)?,
            phone: optional_text(input.phone, "input.phone", 40)?,
            password_hash: None,
        };
        if let Some(password) = required(input.password, "input.password", Ok)? {
            password::check_strength(&password)
                .map_err(|m| ApiError::bad_input("input.password", m))?;
            change.password_hash =
                Some(password::hash(password).await.map_err(ApiError::internal)?);
        }
        update_and_audit(ctx, before, change).await
    }

    /// Changes the signed-in account's own name and phone.
    #[graphql(guard = "RoleGuard::new(ANY_ROLE)")]
    async fn update_me(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to change.")] input: UpdateMeInput,
    ) -> async_graphql::Result<User> {
        let caller = ctx.caller()?.principal()?.clone();
        let app = ctx.app()?;
        let before = app.db.users().get(caller.id).await.found()?;
        let change = UserForUpdate {
            name: required(input.name, "input.name", |n| name_of(&n, "input.name"))?,
            phone: optional_text(input.phone, "input.phone", 40)?,
            ..Default::default()
        };
        update_and_audit(ctx, before, change).await
    }

    /// Deactivates an account: it can no longer sign in, its sessions end
    /// (ADMIN any but their own; MANAGER THERAPIST and USER accounts).
    #[graphql(guard = "RoleGuard::new(MANAGERS)")]
    async fn deactivate_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account's global id.")] id: ID,
    ) -> async_graphql::Result<User> {
        let caller = ctx.caller()?.principal()?.clone();
        let id = user_id(&id)?;
        if caller.id == id {
            return Err(ApiError::bad_input("id", "you cannot deactivate your own account").into());
        }
        let app = ctx.app()?;
        let before = app.db.users().get(id).await.found()?;
        if !caller.role.may_manage_role(before.role) {
            return Err(ApiError::Forbidden.into());
        }
        let stamp = crate::graphql::model::stamp();
        let pending = crate::graphql::model::intend(
            ctx,
            ChangeKind::Updated,
            id,
            Some(&before),
            Some(stamp),
            "user.deactivate",
        )
        .await?;
        let users = app.db.users();
        let (pending, after) = crate::graphql::model::attempt(ctx, pending, async {
            users
                .set_active(id, false, stamp)
                .await?
                .ok_or(ApiError::NotFound)
        })
        .await?;
        super::sessions_api::end_every_session(app, id).await?;
        let deactivated =
            crate::graphql::model::changed(ctx, pending, &before, after, users.restore(&before))
                .await?;
        Ok(deactivated)
    }
}

async fn update_and_audit(
    ctx: &Context<'_>,
    before: UserRecord,
    change: UserForUpdate,
) -> async_graphql::Result<User> {
    let app = ctx.app()?;
    let stamp = crate::graphql::model::stamp();
    let pending = crate::graphql::model::intend(
        ctx,
        ChangeKind::Updated,
        before.id,
        Some(&before),
        Some(stamp),
        "user.update",
    )
    .await?;
    let users = app.db.users();
    let (pending, after) = crate::graphql::model::attempt(ctx, pending, async {
        users
            .update(before.id, &change, stamp)
            .await?
            .ok_or(ApiError::NotFound)
    })
    .await?;
    let role_changed = after.role != before.role;
    let password_reset = after.password_hash != before.password_hash;
    app.accounts.forget(before.id);
    let updated =
        crate::graphql::model::changed(ctx, pending, &before, after, users.restore(&before))
            .await?;
    if role_changed || password_reset {
        // Every session of the account ends, on every instance.
        super::sessions_api::end_every_session(app, before.id).await?;
    }
    Ok(updated)
}
