//! Migrations and seeds: up, down, status, and idempotent seeding.

use alawael::db::migrations;
use alawael::models::registry;
use futures::TryStreamExt;

use crate::support::helpers::spawn_app;

async fn index_names(app: &crate::support::helpers::TestApp, collection: &str) -> Vec<String> {
    let indexes: Vec<_> = app
        .state
        .db
        .collection(collection)
        .list_indexes()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    indexes
        .into_iter()
        .filter_map(|i| i.options.and_then(|o| o.name))
        .collect()
}

#[tokio::test]
async fn down_undoes_the_last_step_and_up_applies_it_again() {
    // No background workers: dropping and creating indexes while they query
    // the same database can leave FerretDB's index metadata out of step
    // with SQLite ("index … already exists"), seen once in a clean-clone run.
    let app =
        crate::support::helpers::spawn_app_with(|s| s.server.background_workers = false).await;
    let db = &app.state.db;
    let status = migrations::status(db).await.unwrap();
    assert!(status.iter().all(|s| s.applied_at.is_some()), "{status:?}");
    assert!(
        index_names(&app, "assets")
            .await
            .contains(&"category_status".to_string())
    );
    let last = status.last().unwrap().id;

    assert_eq!(
        migrations::down(db, &registry::indexes()).await.unwrap(),
        Some(last)
    );
    let after = migrations::status(db).await.unwrap();
    assert!(after.last().unwrap().applied_at.is_none());
    assert!(
        after[..after.len() - 1]
            .iter()
            .all(|s| s.applied_at.is_some())
    );

    assert_eq!(
        migrations::up(db, &registry::indexes()).await.unwrap(),
        vec![last]
    );
    assert!(
        migrations::up(db, &registry::indexes())
            .await
            .unwrap()
            .is_empty(),
        "nothing left to apply"
    );

    while migrations::down(db, &registry::indexes())
        .await
        .unwrap()
        .is_some()
    {}
    assert!(
        !index_names(&app, "assets")
            .await
            .contains(&"category_status".to_string())
    );
    assert!(
        !index_names(&app, "users")
            .await
            .contains(&"email_unique".to_string())
    );
    assert_eq!(
        migrations::up(db, &registry::indexes())
            .await
            .unwrap()
            .len(),
        status.len()
    );
}

#[tokio::test]
async fn seeding_twice_adds_nothing_the_second_time() {
    let app = spawn_app().await;
    let db = &app.state.db;
    let first = alawael::seed::load(db, &app.state.settings.seed)
        .await
        .unwrap();
    assert_eq!(
        first.users_added, 0,
        "the test app seeded the accounts already"
    );
    assert_eq!(first.assets_added, 120);
    let second = alawael::seed::load(db, &app.state.settings.seed)
        .await
        .unwrap();
    assert_eq!((second.users_added, second.assets_added), (0, 0));
    assert_eq!(second.already_present, 124);
    let assigned = db
        .collection("assets")
        .count_documents(bson::doc! { "assignedTo": { "$ne": null } })
        .await
        .unwrap();
    assert!(assigned > 60, "most seeded assets are assigned: {assigned}");
}
