//! The people the centre serves: record, rules, API, and the export and
//! erasure of everything held about one person.

pub mod api;
pub mod privacy;
pub mod privacy_api;
pub mod record;
pub mod rules;
pub mod seed;

/// The stored record, whose `Model` declaration says the collection, order
/// fields, indexes, row scope and the fields kept out of logs and payloads.
pub type Record = record::BeneficiaryRecord;

/// The domain events its changes raise, which webhooks subscribe to.
pub const EVENTS: &[&str] = &["beneficiary.created", "beneficiary.updated"];

/// Whether `alawael seed` writes rows of it.
pub const SEEDED: bool = true;

/// The model's fields on the schema's roots.
pub type Query = api::BeneficiaryQuery;

/// The model's mutations: its own, and export and erasure of a person.
#[derive(async_graphql::MergedObject, Default)]
pub struct BeneficiaryMutations(api::BeneficiaryMutation, privacy_api::PrivacyMutation);
pub type Mutation = BeneficiaryMutations;
pub type Subscription = crate::graphql::NoStreams;

crate::ordering! {
    /// Fields `beneficiaries` can be ordered by.
    pub enum BeneficiaryOrderField {
        /// Alphabetically by full name.
        FullName = "FULL_NAME" => "fullName",
        /// By creation time.
        CreatedAt = "CREATED_AT" => "createdAt",
        /// By last change.
        UpdatedAt = "UPDATED_AT" => "updatedAt",
        /// By year of birth (not for USER).
        BirthYear = "BIRTH_YEAR" => "birthYear",
    }
    /// How `beneficiaries` is ordered.
    input BeneficiaryOrder;
}

crate::api_enum!(
    /// A beneficiary's gender as recorded.
    Gender {
        /// Male.
        Male,
        /// Female.
        Female,
    }
);

crate::api_enum!(
    /// How severe a disability is.
    Severity {
        /// Mild.
        Mild,
        /// Moderate.
        Moderate,
        /// Severe.
        Severe,
        /// Profound.
        Profound,
    }
);

crate::api_enum!(
    /// Whether a beneficiary is currently served.
    BeneficiaryStatus {
        /// Served by the centre.
        Active,
        /// Not currently served.
        Inactive,
    }
);
