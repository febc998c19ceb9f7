//! Webhooks (ADMIN only): the `Webhook` type, its deliveries, create (the secret is shown once), update, delete, secret rotation
//! (the previous secret keeps signing for a grace period), redelivery, the
//! lists, and the `webhookDeliveryUpdated` subscription. Sending lives in
//! `live::webhooks`.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, ID, InputObject, Object, SimpleObject, Subscription};
use bson::oid::ObjectId;
use bson::{DateTime as BsonDateTime, doc};
use futures::Stream;

use super::record::{PreviousSecret, WebhookForUpdate, WebhookOrder, WebhookRecord, Webhooks};
use super::rules::{Refusal, TargetRules, new_secret, resolve_target};
use crate::db::model::change_event;
use crate::error::{ApiError, ApiResult};
use crate::events::ChangeKind;
use crate::graphql::context::{CallerExt, ContextExt};
use crate::graphql::guards::{ADMIN, RoleGuard};
use crate::graphql::model::{self, ApiModel};
use crate::graphql::pagination::{Connection, Listed, OrderDirection, connection_cost};
use crate::graphql::scalars::DateTime;
use crate::models::events as names;
use crate::models::user::api::User;
use crate::models::webhook_delivery::api::{
    WebhookDelivery, WebhookDeliveryFilter, WebhookDeliveryOrder,
};
use crate::models::webhook_delivery::record::{DeliveryFilter, WebhookDeliveryRecord};

/// An endpoint of a partner system that receives signed events.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Webhook {
    #[graphql(skip)]
    pub record: Arc<WebhookRecord>,
    /// Where events are POSTed.
    pub url: String,
    /// The event names it receives (`*` = all).
    pub events: Vec<String>,
    /// What it is for.
    pub description: Option<String>,
    /// Whether events are sent to it (false once disabled after repeated failures).
    pub active: bool,
    /// Failed attempts in a row; reaching the configured limit disables it.
    pub consecutive_failures: i32,
    /// Why it was disabled, when it was.
    pub disabled_reason: Option<String>,
}

impl crate::graphql::rows::Plain for Webhook {}

impl Listed for Webhook {
    const NAME: &'static str = <Self as ApiModel>::KIND.name();
}

impl ApiModel for Webhook {
    type Record = WebhookRecord;
    fn wrap(record: Arc<WebhookRecord>) -> Self {
        Self {
            url: record.url.clone(),
            events: record.events.clone(),
            description: record.description.clone(),
            active: record.active,
            consecutive_failures: record.consecutive_failures,
            disabled_reason: record.disabled_reason.clone(),
            record,
        }
    }
    fn record(&self) -> &WebhookRecord {
        &self.record
    }
}

#[alawael_macros::connections]
#[ComplexObject]
impl Webhook {
    /// The webhook's global id.
    pub async fn id(&self) -> ID {
        self.global_id()
    }

    /// Whether its payloads carry personal fields (names, birth years, ...),
    /// as ADMIN granted; never sensitive ones (national ids, notes, ...).
    /// Without it a payload names the event, the row's id and kind, the
    /// fields that changed and the fields its type declares public.
    async fn include_personal_data(&self) -> bool {
        self.record.include_personal_data
    }

    /// When it was disabled, when it was.
    async fn disabled_at(&self) -> Option<DateTime> {
        self.record.disabled_at.map(Into::into)
    }

    /// Until when the secret replaced by the last rotation still signs.
    async fn previous_secret_expires_at(&self) -> Option<DateTime> {
        self.record.previous_secret.as_ref().map(|p| p.until.into())
    }

    /// Who created it.
    async fn created_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(model::load::<User>(ctx, self.record.created_by).await?)
    }

    /// When the record was created.
    async fn created_at(&self) -> DateTime {
        self.record.created_at.into()
    }

    /// When the record last changed.
    async fn updated_at(&self) -> DateTime {
        self.record.updated_at.into()
    }

    /// Its deliveries, a page at a time (oldest first unless ordered otherwise).
    #[graphql(complexity = "connection_cost(first, last, child_complexity)")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        page: PageArgs,
        #[graphql(desc = "Which deliveries to list.")] filter: Option<WebhookDeliveryFilter>,
        #[graphql(desc = "The ordering; by creation time when absent.")] order_by: Option<
            WebhookDeliveryOrder,
        >,
    ) -> async_graphql::Result<Connection<WebhookDelivery>> {
        let filter = filter.unwrap_or_default();
        let filter = DeliveryFilter {
            webhook: None,
            statuses: filter
                .status
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            events: filter.events.unwrap_or_default(),
        }
        .to_document()?;
        Ok(model::children(
            ctx,
            "webhookId",
            self.record.id,
            page,
            filter,
            order_by.map(|o| (o.field, o.direction)),
        )
        .await?)
    }
}

/// A webhook just created or re-keyed, with its secret: shown this once.
#[derive(SimpleObject)]
pub struct CreatedWebhook {
    /// The webhook.
    webhook: Webhook,
    /// The signing secret (`whsec_…`, Standard Webhooks): store it now, it is not shown again.
    secret: String,
}

/// A new webhook.
#[derive(InputObject)]
pub struct CreateWebhookInput {
    /// Where to POST events: https (http only where configured), no
    /// credentials, not a private or loopback address.
    url: String,
    /// Event names from `webhookEventNames`, or `*` for all.
    events: Vec<String>,
    /// What it is for (500 characters at most).
    description: Option<String>,
    /// Grants it personal fields in payloads (never sensitive ones); off when absent.
    include_personal_data: Option<bool>,
}

/// Changes to a webhook; absent fields stay.
#[derive(InputObject)]
pub struct UpdateWebhookInput {
    /// A new target URL (checked as on creation).
    url: Option<String>,
    /// New event names.
    events: Option<Vec<String>>,
    /// A new description.
    description: Option<String>,
    /// true re-enables a disabled webhook (its failure count starts again); false pauses it.
    active: Option<bool>,
    /// Grants (true) or withdraws (false) personal fields in its payloads.
    include_personal_data: Option<bool>,
}

fn refused(field: &str) -> impl Fn(Refusal) -> ApiError + '_ {
    move |Refusal(why)| ApiError::bad_input(field, why)
}

fn check_events(events: &[String]) -> ApiResult<Vec<String>> {
    if events.is_empty() || events.len() > 50 {
        return Err(ApiError::bad_input(
            "input.events",
            "give 1 to 50 event names",
        ));
    }
    for name in events {
        if name != names::ALL && !names::catalogue().contains(&name.as_str()) {
            return Err(ApiError::bad_input(
                "input.events",
                format!("`{name}` is not an event name; see webhookEventNames"),
            ));
        }
    }
    let mut events = events.to_vec();
    events.sort();
    events.dedup();
    Ok(events)
}

fn check_description(description: Option<String>) -> ApiResult<Option<String>> {
    match description.map(|d| d.trim().to_string()) {
        Some(d) if d.chars().count() > 500 => Err(ApiError::bad_input(
            "input.description",
            "at most 500 characters",
        )),
        Some(d) if d.is_empty() => Ok(None),
        other => Ok(other),
    }
}

async fn loaded(ctx: &Context<'_>, id: &ID) -> ApiResult<Arc<WebhookRecord>> {
    Ok(model::one::<Webhook>(ctx, id).await?.record)
}

#[derive(Default)]
pub struct WebhookQuery;

#[alawael_macros::connections]
#[Object]
impl WebhookQuery {
    /// The webhooks, a page at a time (ADMIN).
    #[graphql(
        guard = "RoleGuard::new(ADMIN)",
        complexity = "connection_cost(first, last, child_complexity)"
    )]
    async fn webhooks(
        &self,
        ctx: &Context<'_>,
        page: PageArgs,
        #[graphql(desc = "Only active (true) or inactive (false) webhooks.")] active: Option<bool>,
    ) -> async_graphql::Result<Connection<Webhook>> {
        let filter = match active {
            Some(active) => doc! { "active": active },
            None => doc! {},
        };
        Ok(model::list(
            ctx,
            page,
            filter,
            Some((WebhookOrder::CreatedAt, OrderDirection::Asc)),
        )
        .await?)
    }

    /// One webhook by id (ADMIN); `null` with `NOT_FOUND` when there is none.
    #[graphql(guard = "RoleGuard::new(ADMIN)")]
    async fn webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The webhook's global id.")] id: ID,
    ) -> async_graphql::Result<Option<Webhook>> {
        Ok(Some(model::one(ctx, &id).await?))
    }

    /// Every event name a webhook can subscribe to.
    #[graphql(guard = "RoleGuard::new(ADMIN)")]
    async fn webhook_event_names(&self) -> Vec<&'static str> {
        names::catalogue().to_vec()
    }
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Registers a webhook (ADMIN). Its secret is in the answer, once.
    #[graphql(guard = "RoleGuard::new(ADMIN)")]
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The webhook.")] input: CreateWebhookInput,
    ) -> async_graphql::Result<CreatedWebhook> {
        let app = ctx.app()?;
        // Stored as parsed: the URL kept is the URL checked and dialled.
        let url = resolve_target(input.url.trim(), TargetRules::of(&app.settings.webhooks))
            .await
            .map_err(refused("input.url"))?
            .url
            .to_string();
        let events = check_events(&input.events)?;
        let description = check_description(input.description)?;
        let secret = new_secret();
        let now = BsonDateTime::now();
        let record = WebhookRecord {
            id: ObjectId::new(),
            url,
            events,
            description,
            secret: secret.clone(),
            previous_secret: None,
            active: true,
            consecutive_failures: 0,
            disabled_at: None,
            disabled_reason: None,
            include_personal_data: input.include_personal_data.unwrap_or(false),
            created_by: ctx.caller()?.principal()?.id,
            created_at: now,
            updated_at: now,
        };
        let webhook = model::insert::<Webhook>(ctx, record, "webhook.create", "duplicate").await?;
        app.live.forget_webhooks().await;
        Ok(CreatedWebhook { webhook, secret })
    }

    /// Changes a webhook (ADMIN).
    #[graphql(guard = "RoleGuard::new(ADMIN)")]
    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The webhook's global id.")] id: ID,
        #[graphql(desc = "What to change.")] input: UpdateWebhookInput,
    ) -> async_graphql::Result<Webhook> {
        let app = ctx.app()?;
        let before = loaded(ctx, &id).await?;
        let mut change = WebhookForUpdate::default();
        if let Some(url) = input.url {
            let target = resolve_target(url.trim(), TargetRules::of(&app.settings.webhooks))
                .await
                .map_err(refused("input.url"))?;
            change.url = Some(target.url.to_string());
        }
        if let Some(events) = input.events {
            change.events = Some(check_events(&events)?);
        }
        if input.description.is_some() {
            change.description = Some(check_description(input.description)?);
        }
        change.include_personal_data = input
            .include_personal_data
            .filter(|&grant| grant != before.include_personal_data);
        match input.active {
            Some(true) if !before.active => change.resume(),
            Some(false) if before.active => {
                change.pause(BsonDateTime::now(), "paused by an administrator");
            }
            _ => {}
        }
        let webhook =
            model::update::<Webhook>(ctx, &before, change, "webhook.update", "duplicate").await?;
        app.live.forget_webhooks().await;
        Ok(webhook)
    }

    /// Deletes a webhook (ADMIN); its deliveries stay until retention removes them.
    #[graphql(guard = "RoleGuard::new(ADMIN)")]
    async fn delete_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The webhook's global id.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let before = loaded(ctx, &id).await?;
        let deleted = model::delete::<Webhook>(ctx, &before, "webhook.delete").await?;
        ctx.app()?.live.forget_webhooks().await;
        Ok(deleted)
    }

    /// Gives a webhook a new secret (ADMIN), shown once; the previous one
    /// keeps signing (a second signature) for the configured grace period,
    /// so the receiver can switch without losing events.
    #[graphql(guard = "RoleGuard::new(ADMIN)")]
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The webhook's global id.")] id: ID,
    ) -> async_graphql::Result<CreatedWebhook> {
        let app = ctx.app()?;
        let before = loaded(ctx, &id).await?;
        let secret = new_secret();
        let grace = i64::try_from(app.settings.webhooks.secret_grace_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX / 4);
        let previous = PreviousSecret {
            secret: before.secret.clone(),
            until: BsonDateTime::from_millis(
                BsonDateTime::now().timestamp_millis().saturating_add(grace),
            ),
        };
        let change = WebhookForUpdate {
            secret: Some(secret.clone()),
            previous_secret: Some(previous),
            ..WebhookForUpdate::default()
        };
        let webhook =
            model::update::<Webhook>(ctx, &before, change, "webhook.rotate_secret", "duplicate")
                .await?;
        app.live.forget_webhooks().await;
        Ok(CreatedWebhook { webhook, secret })
    }

    /// Queues a delivery again from its first attempt (ADMIN): for a DEAD
    /// one after the receiver is fixed, or to send a delivered event again
    /// (same `webhook-id`, so a receiver that has it can skip it).
    #[graphql(guard = "RoleGuard::new(ADMIN)")]
    async fn redeliver_webhook_delivery(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The delivery's global id.")] id: ID,
    ) -> async_graphql::Result<WebhookDelivery> {
        let app = ctx.app()?;
        let delivery = model::one::<WebhookDelivery>(ctx, &id).await?;
        let again = Webhooks::new(&app.db)
            .redeliver(delivery.record.id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| {
                ApiError::Conflict(
                    "an attempt of this delivery is under way; retry when it ends".into(),
                )
            })?;
        crate::models::audit_log_entry::request_api::audit(
            ctx,
            "webhook.redeliver",
            "WebhookDelivery",
            Some(again.id.to_hex()),
            Vec::new(),
        )
        .await?;
        if let Some(event) = change_event(ChangeKind::Updated, again.clone()) {
            app.bus.publish(event);
        }
        app.live.wake_sender.notify_one();
        Ok(WebhookDelivery::wrap(Arc::new(again)))
    }
}

#[derive(Default)]
pub struct WebhookSubscription;

#[Subscription]
impl WebhookSubscription {
    /// Every change of a delivery's state, on any instance (ADMIN); only
    /// one webhook's when `webhookId` is given.
    #[graphql(guard = "RoleGuard::new(ADMIN)")]
    async fn webhook_delivery_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this webhook's deliveries.")] webhook_id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = WebhookDelivery> + use<>> {
        let only = match &webhook_id {
            Some(id) => Some(model::reference::<Webhook>(id, "webhookId")?),
            None => None,
        };
        let mut receiver = ctx.app()?.bus.subscribe();
        Ok(async_stream::stream! {
            loop {
                match receiver.recv().await {
                    Ok(event) => {
                        if let Some((_, snapshot)) = event.of_entity("WebhookDelivery")
                            && let Some(delivery) = snapshot.get::<WebhookDeliveryRecord>()
                            && only.is_none_or(|w| w == delivery.webhook_id)
                        {
                            yield WebhookDelivery::wrap(delivery);
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a slow subscriber missed delivery events");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    }
}
