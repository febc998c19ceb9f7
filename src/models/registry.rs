//! Registries derived from the one list of models (`crate::with_models!`):
//! the model folders, the event catalogue, the seeded types and every
//! declared index. Nothing here names a model by hand.

use std::sync::LazyLock;

use crate::db::model::{IndexSpec, Model};

macro_rules! registry {
    ($($name:ident => $folder:ident),+ $(,)?) => {
        /// Every model's folder under `src/models`, in the list's order.
        pub const FOLDERS: &[&str] = &[$(stringify!($folder)),+];

        /// Every model's node kind beside the kind its record declares.
        #[cfg(test)]
        fn declared_kinds() -> Vec<(crate::domain::NodeKind, crate::domain::NodeKind)> {
            vec![$((crate::domain::NodeKind::$name, <super::$folder::Record as Model>::KIND)),+]
        }

        static EVENT_NAMES: LazyLock<Vec<&'static str>> =
            LazyLock::new(|| [$(super::$folder::EVENTS),+].concat());

        /// The type names of the models `alawael seed` writes.
        pub fn seeded_types() -> Vec<&'static str> {
            [$((stringify!($name), super::$folder::SEEDED)),+]
                .into_iter()
                .filter_map(|(name, seeded)| seeded.then_some(name))
                .collect()
        }

        /// Every index every model declares: one behind each order field,
        /// then the model's extras.
        pub fn indexes() -> Vec<IndexSpec> {
            [$(<super::$folder::Record as Model>::indexes()),+].concat()
        }
    };
}

crate::with_models!(registry);

/// Every domain event name, model by model.
pub fn event_names() -> &'static [&'static str] {
    &EVENT_NAMES
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_folder_under_src_models_is_in_the_list_of_models() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/models");
        let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
            .expect("src/models is readable")
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let listed: BTreeSet<String> = FOLDERS.iter().map(|f| f.to_string()).collect();
        assert_eq!(
            on_disk, listed,
            "a model folder is missing from with_models!"
        );
        assert_eq!(FOLDERS.len(), crate::domain::NodeKind::ALL.len());
    }

    #[test]
    fn the_migrations_name_the_collections_of_todays_models() {
        let named = crate::db::migrations::collections();
        for collection in [
            super::super::analytics_event::record::COLLECTION,
            super::super::webhook::record::CLAIMS,
            super::super::webhook::record::DELIVERIES,
            super::super::report::record::CLAIMS,
            super::super::user::record::COLLECTION,
            super::super::asset::record::COLLECTION,
        ] {
            assert!(named.contains(&collection), "no step names {collection}");
        }
    }

    #[test]
    fn each_model_record_declares_the_kind_of_its_line() {
        for (listed, declared) in declared_kinds() {
            assert_eq!(
                listed,
                declared,
                "{} declares {}",
                listed.name(),
                declared.name()
            );
        }
    }

    #[test]
    fn every_model_gets_an_index_behind_each_of_its_order_fields() {
        let indexes = indexes();
        let collections: BTreeSet<&str> = indexes.iter().map(|i| i.collection).collect();
        for collection in ["users", "assets", "disability_programs", "beneficiaries"] {
            assert!(collections.contains(collection), "{collection} has indexes");
        }
        assert!(
            indexes
                .iter()
                .any(|i| i.collection == "users" && i.name == "order_name"),
            "users are ordered by name through a generated index"
        );
        let names: BTreeSet<(&str, &str)> = indexes
            .iter()
            .map(|i| (i.collection, i.name.as_str()))
            .collect();
        assert_eq!(names.len(), indexes.len(), "no index is declared twice");
    }

    #[test]
    fn event_names_belong_to_the_model_that_raises_them_and_appear_once() {
        let names = event_names();
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert!(names.contains(&"asset.status_changed"));
        assert!(names.contains(&"program.created"));
        assert_eq!(
            seeded_types(),
            [
                "User",
                "Asset",
                "DisabilityProgram",
                "Beneficiary",
                "Enrollment",
                "TherapySession",
                "Schedule"
            ]
        );
    }
}
