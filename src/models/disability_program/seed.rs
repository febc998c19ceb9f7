//! The seeded programmes: a programme of `seeds/clinic.json`, as the record of one round.

use bson::DateTime;
use bson::oid::ObjectId;
use serde::Deserialize;

use super::record::DisabilityProgramRecord;
use super::{ProgramCategory, ProgramStatus};
use crate::db::money::StoredMoney;
use crate::domain::Money;
use crate::models::seeding::seed_id;

/// A programme in `seeds/clinic.json`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Program {
    pub name: String,
    pub category: ProgramCategory,
    pub capacity: i32,
    pub duration_weeks: i32,
    pub fee_minor: i64,
    pub description: String,
}

/// The `index`-th programme row: `p` in `round` (named with the round after
/// the first), run by `manager` with `therapist_ids`.
pub fn program(
    p: &Program,
    index: usize,
    round: usize,
    manager: ObjectId,
    therapist_ids: Vec<ObjectId>,
    created: DateTime,
) -> anyhow::Result<DisabilityProgramRecord> {
    let fee = Money::parse(p.fee_minor, "SAR").map_err(anyhow::Error::msg)?;
    Ok(DisabilityProgramRecord {
        id: seed_id("program", index),
        name: if round == 0 {
            p.name.clone()
        } else {
            format!("{} ({})", p.name, round + 1)
        },
        category: p.category,
        description: Some(p.description.clone()),
        capacity: crate::models::disability_program::rules::capacity(p.capacity)
            .map_err(anyhow::Error::msg)?,
        duration_weeks: crate::models::disability_program::rules::duration_weeks(p.duration_weeks)
            .map_err(anyhow::Error::msg)?,
        fee: StoredMoney::from(&fee),
        status: ProgramStatus::Active,
        manager_id: Some(manager),
        therapist_ids,
        created_at: created,
        updated_at: created,
    })
}
