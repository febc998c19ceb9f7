//! Data protection for ADMIN: `exportBeneficiaryData` (everything held about
//! one person, as JSON) and `eraseBeneficiary` (the right to be forgotten).
//! Both are audited; neither audit entry carries the person's data.

use async_graphql::{Context, ID, Json, Object};

use super::api::Beneficiary;
use super::privacy;
use super::record::BeneficiaryRecord;
use crate::db::model::Model;
use crate::error::ApiError;
use crate::events::{ChangeKind, Event, Snapshot};
use crate::graphql::context::ContextExt;
use crate::graphql::guards::{ADMIN, RoleGuard};
use crate::graphql::model::{self, ApiModel};
use crate::models::audit_log_entry::changes::Change;
use crate::models::audit_log_entry::request_api::audit;

fn count(field: &str, n: u64) -> Change {
    Change::new(
        field,
        bson::Bson::Null,
        bson::Bson::Int64(i64::try_from(n).unwrap_or(i64::MAX)),
    )
}

#[derive(Default)]
pub struct PrivacyMutation;

#[Object]
impl PrivacyMutation {
    /// Everything held about one beneficiary across every collection, as
    /// one JSON document (ADMIN). Audited as `beneficiary.export`.
    #[graphql(guard = "RoleGuard::new(ADMIN)")]
    async fn export_beneficiary_data(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The beneficiary's global id.")] id: ID,
    ) -> async_graphql::Result<Json<serde_json::Value>> {
        let oid = model::decode::<Beneficiary>(&id)?;
        let app = ctx.app()?;
        let data = privacy::export(&app.db, &app.vault, oid)
            .await?
            .ok_or(ApiError::NotFound)?;
        audit(
            ctx,
            "beneficiary.export",
            "Beneficiary",
            Some(oid.to_hex()),
            Vec::new(),
        )
        .await?;
        Ok(Json(data))
    }

    /// Erases what identifies a beneficiary wherever it is held: destroys
    /// their data key, so everything sealed with it (national id, birth
    /// date, guardian, medical and session notes, their personal values in
    /// the audit log, whose chain still verifies) stops opening everywhere,
    /// backups included; clears their name and notes, thins stored webhook
    /// payloads, clears report results and analytics dimensions about them;
    /// keeps the rows statistics need and sets `erasedAt` (ADMIN). Erasing
    /// again changes nothing.
    #[graphql(guard = "RoleGuard::new(ADMIN)")]
    async fn erase_beneficiary(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The beneficiary's global id.")] id: ID,
    ) -> async_graphql::Result<Beneficiary> {
        let person: Beneficiary = model::one(ctx, &id).await?;
        let app = ctx.app()?;
        let Some(erasure) =
            privacy::erase(&app.db, &app.vault, person.record.as_ref().clone()).await?
        else {
            return Ok(person);
        };
        let changes = vec![
            Change::new(
                "erasedAt",
                bson::Bson::Null,
                erasure
                    .after
                    .erased_at
                    .map(bson::Bson::DateTime)
                    .unwrap_or(bson::Bson::Null),
            ),
            Change::new(
                "sessionNotesCleared",
                bson::Bson::Null,
                bson::Bson::Int64(i64::try_from(erasure.sessions_cleared).unwrap_or(i64::MAX)),
            ),
            Change::new(
                "auditEntriesErased",
                bson::Bson::Null,
                bson::Bson::Int64(i64::try_from(erasure.audit_entries).unwrap_or(i64::MAX)),
            ),
            Change::new(
                "dataKeyDestroyed",
                bson::Bson::Null,
                bson::Bson::Boolean(erasure.key_destroyed),
            ),
            count("deliveriesThinned", erasure.deliveries_thinned),
            count("reportResultsCleared", erasure.reports_cleared),
            count("outboxIntentsScrubbed", erasure.intents_scrubbed),
            count("analyticsDimensionsCleared", erasure.analytics_scrubbed),
        ];
        // Erasure is not undone when its audit entry fails: the person asked
        // to be forgotten. The failure is reported and logged.
        audit(
            ctx,
            "beneficiary.erase",
            "Beneficiary",
            Some(erasure.before.id.to_hex()),
            changes,
        )
        .await?;
        let after = std::sync::Arc::new(erasure.after);
        // Every instance forgets the key it may hold in memory, and no
        // cached answer shows the person any longer.
        app.bus.publish(Event::KeyDestroyed { subject: after.id });
        for entity in ["Beneficiary", "Enrollment", "TherapySession", "Report"] {
            app.responses.invalidate(entity, after.id).await;
        }
        app.bus.publish(Event::record(
            "Beneficiary",
            ChangeKind::Updated,
            after.id,
            Snapshot::of(after.clone(), BeneficiaryRecord::PERSONAL).map_err(ApiError::internal)?,
        ));
        Ok(Beneficiary::wrap(after))
    }
}
