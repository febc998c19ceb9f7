//! What the declaration in `mod.rs` leaves to code: the fields resolved
//! from other rows (a programme's enrolments follow the caller's enrolment
//! scope), the list's filter, and the checks on references and writes.

use async_graphql::{ComplexObject, Context, ID, InputObject};
use bson::oid::ObjectId;

pub use super::DisabilityProgram;
use super::{DisabilityProgramForUpdate, DisabilityProgramRecord};
use super::{ProgramCategory, ProgramStatus};
use crate::domain::Role;
use crate::error::{ApiError, ApiResult};
use crate::graphql::context::ContextExt;
use crate::graphql::guards::{CLINICAL, RoleGuard};
use crate::graphql::model;
use crate::graphql::money::Money;
use crate::graphql::pagination::Connection;
use crate::models::enrollment::api::{
    Enrollment, EnrollmentFilter, EnrollmentOrder, enrollments_of,
};
use crate::models::user::api::{User, staff, staff_member};

#[alawael_macros::node("The programme's global id.")]
#[alawael_macros::connections]
#[ComplexObject]
impl DisabilityProgram {
    /// What the programme offers.
    async fn description(&self) -> Option<&str> {
        self.record.description.as_deref()
    }

    /// What it costs per beneficiary.
    async fn fee(&self) -> Money {
        Money::from(&self.record.fee)
    }

    /// The manager responsible for it.
    async fn manager(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(model::load_some::<User>(ctx, self.record.manager_id).await?)
    }

    /// The therapists who work in it.
    async fn therapists(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        Ok(model::load_many::<User>(ctx, &self.record.therapist_ids).await?)
    }

    /// Its enrolments, a page at a time (a THERAPIST sees their own).
    #[graphql(guard = "RoleGuard::new(CLINICAL)")]
    async fn enrollments(
        &self,
        ctx: &Context<'_>,
        page: PageArgs,
        #[graphql(desc = "Which enrolments to list.")] filter: Option<EnrollmentFilter>,
        #[graphql(desc = "The ordering; by start date when absent.")] order_by: Option<
            EnrollmentOrder,
        >,
    ) -> async_graphql::Result<Connection<Enrollment>> {
        Ok(enrollments_of(ctx, "programId", self.record.id, page, filter, order_by).await?)
    }
}

/// Which programmes `disabilityPrograms` lists.
#[alawael_macros::filter]
#[derive(InputObject, Default)]
pub struct DisabilityProgramFilter {
    /// Only these categories.
    #[filter(one_of = "category")]
    category: Option<Vec<ProgramCategory>>,
    /// Only these statuses.
    #[filter(one_of = "status")]
    status: Option<Vec<ProgramStatus>>,
    /// Only programmes this user manages.
    #[filter(equals = "managerId", node = User)]
    manager_id: Option<ID>,
    /// Only programmes this therapist works in.
    #[filter(equals = "therapistIds", node = User)]
    therapist_id: Option<ID>,
    /// Case-insensitive text found in the name or description.
    #[filter(search = "name, description")]
    search: Option<String>,
}

/// A programme's manager: an active ADMIN or MANAGER.
pub async fn managers(ctx: &Context<'_>, field: &str, id: ID) -> ApiResult<ObjectId> {
    let roles = [Role::Admin, Role::Manager];
    staff_member(ctx, &id, &roles, field, "ADMIN or MANAGER").await
}

/// A programme's therapists: active THERAPIST accounts, at most 50.
pub async fn therapists(ctx: &Context<'_>, field: &str, ids: Vec<ID>) -> ApiResult<Vec<ObjectId>> {
    staff(ctx, &ids, &[Role::Therapist], field, "THERAPIST").await
}

/// Refuses a capacity below the places enrolments already take.
pub async fn places_kept(
    ctx: &Context<'_>,
    before: &DisabilityProgramRecord,
    change: &DisabilityProgramForUpdate,
) -> ApiResult<()> {
    if let Some(capacity) = change.capacity {
        let taken = ctx.app()?.db.enrollments().seats_taken(before.id).await?;
        if u64::try_from(capacity).unwrap_or(0) < taken {
            let places = format!("{taken} places are taken; the capacity cannot go below that");
            return Err(ApiError::Conflict(places));
        }
    }
    Ok(())
}

/// Refuses to delete a programme with enrolments: archive it instead.
pub async fn unenrolled(ctx: &Context<'_>, before: &DisabilityProgramRecord) -> ApiResult<()> {
    if ctx
        .app()?
        .db
        .enrollments()
        .any_in_program(before.id)
        .await?
    {
        let why = "a programme with enrolments cannot be deleted; archive it instead";
        return Err(ApiError::Conflict(why.into()));
    }
    Ok(())
}
