//! The centre's programmes. Every signed-in caller reads them; ADMIN and
//! MANAGER change them. Declared once here: the record, its typed update,
//! the GraphQL type, its inputs, queries and mutations follow from it
//! (`alawael_macros::model`); `api.rs` holds what is not a plain field.

pub mod api;
pub mod record;
pub mod rules;
pub mod seed;

use bson::oid::ObjectId;

use crate::db::money::StoredMoney;
use crate::graphql::money::MoneyInput;

/// A programme the centre runs (physiotherapy, speech therapy, ...).
#[alawael_macros::model(
    collection = record::COLLECTION, cache = 300, plain, read = "ANY_ROLE",
    create = "A new programme.",
    update = "Changes to a programme: absent fields stay, `null` clears the optional ones.",
    list = "The centre's programmes, a page at a time. Cacheable for 300 s (any\nprogramme write makes cached answers stale).",
    list_filter = "Which programmes to list.", list_order = "The ordering; by name when absent.",
    one = "One programme by id. Cacheable for 300 s (a write to this programme\nmakes cached answers stale).",
    one_id = "The programme's global id.", events = "program", seeded, write = "MANAGERS",
    created = "Opens a programme (ADMIN, MANAGER).", updated = "Changes a programme (ADMIN, MANAGER).",
    deleted = "Deletes a programme that has no enrolments (ADMIN, MANAGER); returns its id.",
    clash = "a programme with this name already exists",
    before_update = api::places_kept, before_delete = api::unenrolled,
)]
pub struct DisabilityProgram {
    /// What the programme is called.
    #[field(show, set, check = rules::name)]
    name: String,
    /// What it works on.
    #[field(show, set)]
    category: ProgramCategory,
    /// How many beneficiaries it takes at once (PENDING and ACTIVE enrolments).
    #[field(show, create = "Places (1 to 10000).", update = "Places; not below the places already taken.", check = rules::capacity)]
    capacity: i32,
    /// How long it runs, in weeks.
    #[field(show, create = "Length in weeks (1 to 520).", update = "Length in weeks.", check = rules::duration_weeks)]
    duration_weeks: i32,
    /// What it costs per beneficiary.
    #[field(set, input = MoneyInput, check = MoneyInput::stored)]
    fee: StoredMoney,
    /// What the programme offers.
    #[field(create, update = "What the programme offers; `null` clears it.", check = rules::description)]
    description: Option<String>,
    /// Whether it takes enrolments.
    #[field(show, create = "Whether it takes enrolments; ACTIVE when absent.", update, default = ProgramStatus::Active)]
    status: ProgramStatus,
    #[field(create = "The manager responsible (an active ADMIN or MANAGER).", update = "The manager responsible; `null` clears it.", input = async_graphql::ID, check_async = api::managers)]
    manager_id: Option<ObjectId>,
    #[field(create = "The therapists who work in it (active THERAPIST accounts).", update = "The therapists who work in it (replaces the list).", input = Vec<async_graphql::ID>, check_async = api::therapists)]
    therapist_ids: Vec<ObjectId>,
}

crate::api_enum!(
    /// What a programme works on.
    ProgramCategory {
        /// Physiotherapy and motor skills.
        Physical,
        /// Speech and language therapy.
        Speech,
        /// Occupational therapy: everyday skills.
        Occupational,
        /// Behavioural therapy.
        Behavioral,
        /// Special education.
        Educational,
        /// Vocational training.
        Vocational,
    }
);
crate::api_enum!(
    /// Whether a programme takes enrolments.
    ProgramStatus {
        /// Running and taking enrolments.
        Active,
        /// Temporarily not taking enrolments.
        Paused,
        /// Closed for good.
        Archived,
    }
);

crate::ordering! {
    /// Fields `disabilityPrograms` can be ordered by.
    pub enum DisabilityProgramOrderField {
        /// Alphabetically by name.
        Name = "NAME" => "name",
        /// By creation time.
        CreatedAt = "CREATED_AT" => "createdAt",
        /// By last change.
        UpdatedAt = "UPDATED_AT" => "updatedAt",
        /// By number of places.
        Capacity = "CAPACITY" => "capacity",
    }
    /// How `disabilityPrograms` is ordered.
    input DisabilityProgramOrder;
}
