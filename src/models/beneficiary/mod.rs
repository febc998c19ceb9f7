//! The people the centre serves: record, rules, API, and the export and
//! erasure of everything held about one person.

pub mod api;
pub mod privacy;
pub mod privacy_api;
pub mod record;
pub mod rules;

/// The model's fields on the schema's roots.
pub type Query = api::BeneficiaryQuery;

/// The model's mutations: its own, and export and erasure of a person.
#[derive(async_graphql::MergedObject, Default)]
pub struct BeneficiaryMutations(api::BeneficiaryMutation, privacy_api::PrivacyMutation);
pub type Mutation = BeneficiaryMutations;
pub type Subscription = async_graphql::EmptySubscription;
