//! The seeded beneficiaries: the `g`-th person, drawn from the lists of `seeds/clinic.json`.

use bson::DateTime;
use bson::oid::ObjectId;
use chrono::{Datelike, Duration, NaiveDate, Utc};
use serde::Deserialize;

use super::record::{BeneficiaryRecord, Consent, Guardian};
use super::rules::{BeneficiaryStatus, Gender, Severity};
use crate::models::seeding::{pick, seed_id};
use crate::vault::{DataKey, Indexer};

/// The given names in `seeds/clinic.json`.
#[derive(Deserialize)]
pub struct Names {
    pub female: Vec<String>,
    pub male: Vec<String>,
}

/// The lists of `seeds/clinic.json` a person is drawn from.
pub struct Lists<'a> {
    pub given_names: &'a Names,
    pub family_names: &'a [String],
    pub disability_types: &'a [String],
    pub relations: &'a [String],
}

/// The id of the `g`-th person.
pub fn person_id(g: usize) -> ObjectId {
    seed_id("beneficiary", g)
}

/// The `g`-th person (across rounds): every other one female, born some
/// days before `base`, assessed on `base`, with a guardian of the family;
/// their identifying fields sealed with `key` (theirs), the national id
/// indexed with `index`.
pub fn person(
    g: usize,
    clinic: &Lists<'_>,
    base: NaiveDate,
    created: DateTime,
    key: &DataKey,
    index: &Indexer,
) -> anyhow::Result<BeneficiaryRecord> {
    let female = g.is_multiple_of(2);
    let given = pick(
        if female {
            &clinic.given_names.female
        } else {
            &clinic.given_names.male
        },
        g / 2,
    )?;
    let family = pick(clinic.family_names, g * 7 + g / 16)?;
    let id = person_id(g);
    let national = crate::models::beneficiary::rules::national_id(&format!(
        "{}{:09}",
        if female { 2 } else { 1 },
        100_000_000 + g
    ))
    .map_err(anyhow::Error::msg)?;
    let born = crate::models::beneficiary::rules::date_of_birth(
        base - Duration::days(900 + ((g * 97) % 6000) as i64),
        Utc::now().date_naive(),
    )
    .map_err(anyhow::Error::msg)?;
    let guardian_given = pick(
        if female {
            &clinic.given_names.male
        } else {
            &clinic.given_names.female
        },
        g + 3,
    )?;
    let guardian = Guardian {
        name: format!("{guardian_given} {family}"),
        phone: Some(
            crate::models::beneficiary::rules::phone(&format!(
                "+966 5{} {:03} {:04}",
                g % 10,
                g % 1000,
                (g * 37) % 10_000
            ))
            .map_err(anyhow::Error::msg)?,
        ),
        relation: Some(pick(clinic.relations, g)?.clone()),
    };
    let notes = format!(
        "Assessed {}; follow the {} plan.",
        base.format("%Y-%m-%d"),
        pick(clinic.disability_types, g)?
    );
    Ok(BeneficiaryRecord {
        id,
        full_name: format!("{given} {family}"),
        national_id_key: index.index("nationalId", &national),
        national_id: Some(key.seal(&national)),
        date_of_birth: Some(key.seal(&born.format("%Y-%m-%d").to_string())),
        birth_year: Some(born.year()),
        gender: if female { Gender::Female } else { Gender::Male },
        disability_type: pick(clinic.disability_types, g)?.clone(),
        severity: *pick(Severity::ALL, g / 3)?,
        guardian: Some(key.seal(&serde_json::to_string(&guardian)?)),
        medical_notes: Some(key.seal(&notes)),
        consent: Some(Consent {
            data_processing: true,
            recorded_at: created,
        }),
        status: BeneficiaryStatus::Active,
        erased_at: None,
        created_at: created,
        updated_at: created,
    })
}
