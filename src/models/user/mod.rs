//! Staff accounts: the stored record, its API and the account mutations,
//! and sign-in (tokens for an account).

pub mod api;
pub mod api_keys_api;
pub mod record;
pub mod seed;
pub mod sessions;
pub mod sessions_api;
pub mod sign_in_api;

/// The stored record, whose `Model` declaration says the collection, order
/// fields, indexes, row scope and the fields kept out of logs and payloads.
pub type Record = record::UserRecord;

/// The domain events its changes raise, which webhooks subscribe to.
pub const EVENTS: &[&str] = &["user.created", "user.updated", "user.deactivated"];

/// Whether `alawael seed` writes rows of it.
pub const SEEDED: bool = true;

/// The model's fields on the schema's roots: the accounts, then the
/// signed-in person's sessions.
#[derive(async_graphql::MergedObject, Default)]
pub struct UserQueries(
    api::UserQuery,
    sessions_api::SessionQuery,
    api_keys_api::ApiKeyQuery,
);
pub type Query = UserQueries;

/// The model's mutations: sign-in first (as the schema has always listed
/// them), then the account mutations.
#[derive(async_graphql::MergedObject, Default)]
pub struct UserMutations(
    sign_in_api::AuthMutation,
    api::UserMutation,
    sessions_api::SessionMutation,
    api_keys_api::ApiKeyMutation,
);
pub type Mutation = UserMutations;
pub type Subscription = crate::graphql::NoStreams;

crate::ordering! {
    /// Fields `users` can be ordered by.
    pub enum UserOrderField {
        /// Alphabetically by name.
        Name = "NAME" => "name",
        /// By creation time.
        CreatedAt = "CREATED_AT" => "createdAt",
    }
    /// How `users` is ordered.
    input UserOrder;
}
