//! Every role against every user and asset operation: a table of what is
//! allowed and what is refused, with the code.

use serde_json::{Value, json};

use crate::support::helpers::{TestApp, error_code, spawn_app};

const ROLES: [&str; 4] = ["admin", "manager", "therapist", "user"];

struct Case {
    name: &'static str,
    query: &'static str,
    /// Variables, given the app and a fresh target.
    variables: fn(&Fixture) -> Value,
    /// Expected outcome per role, in ROLES order: `None` allowed, or the error code.
    expect: [Option<&'static str>; 4],
}

struct Fixture {
    asset: String,
    therapist: String,
    admin: String,
    serial: String,
}

const OK: Option<&str> = None;
const FORBIDDEN: Option<&str> = Some("FORBIDDEN");

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "list users",
            query: "{ users(first: 5) { totalCount nodes { email } } }",
            variables: |_| json!({}),
            expect: [OK, OK, FORBIDDEN, FORBIDDEN],
        },
        Case {
            name: "read a colleague's name",
            query: "query($id: ID!) { user(id: $id) { id name } }",
            variables: |f| json!({ "id": f.admin }),
            expect: [OK, OK, OK, OK],
        },
        Case {
            name: "read a colleague's e-mail",
            query: "query($id: ID!) { user(id: $id) { email } }",
            variables: |f| json!({ "id": f.admin }),
            expect: [OK, OK, FORBIDDEN, FORBIDDEN],
        },
        Case {
            name: "read a colleague through node",
            query: "query($id: ID!) { node(id: $id) { id ... on User { name } } }",
            variables: |f| json!({ "id": f.therapist }),
            expect: [OK, OK, OK, OK],
        },
        Case {
            name: "create a USER account",
            query: "mutation($e: String!) { createUser(input: { email: $e, name: \"New Person\", role: USER, password: \"long-enough-password\" }) { id } }",
            variables: |f| json!({ "e": format!("new-{}@alawael.local", f.serial) }),
            expect: [OK, OK, FORBIDDEN, FORBIDDEN],
        },
        Case {
            name: "create an ADMIN account",
            query: "mutation($e: String!) { createUser(input: { email: $e, name: \"New Admin\", role: ADMIN, password: \"long-enough-password\" }) { id } }",
            variables: |f| json!({ "e": format!("boss-{}@alawael.local", f.serial) }),
            expect: [OK, FORBIDDEN, FORBIDDEN, FORBIDDEN],
        },
        Case {
            name: "rename a therapist",
            query: "mutation($id: ID!) { updateUser(id: $id, input: { department: \"Speech\" }) { id } }",
            variables: |f| json!({ "id": f.therapist }),
            expect: [OK, OK, FORBIDDEN, FORBIDDEN],
        },
        Case {
            name: "change an admin",
            query: "mutation($id: ID!) { updateUser(id: $id, input: { department: \"Board\" }) { id } }",
            variables: |f| json!({ "id": f.admin }),
            expect: [OK, FORBIDDEN, FORBIDDEN, FORBIDDEN],
        },
        Case {
            name: "update own name",
            query: "mutation { updateMe(input: { name: \"Renamed Person\" }) { name } }",
            variables: |_| json!({}),
            expect: [OK, OK, OK, OK],
        },
        Case {
            name: "list assets",
            query: "{ assets(first: 5) { totalCount nodes { name } } }",
            variables: |_| json!({}),
            expect: [OK, OK, OK, OK],
        },
        Case {
            name: "read an asset",
            query: "query($id: ID!) { asset(id: $id) { name value { amountMinor } } }",
            variables: |f| json!({ "id": f.asset }),
            expect: [OK, OK, OK, OK],
        },
        Case {
            name: "create an asset",
            query: "mutation { createAsset(input: { name: \"Walker\", category: MEDICAL, value: { amountMinor: 9900, currency: \"SAR\" } }) { id } }",
            variables: |_| json!({}),
            expect: [OK, OK, FORBIDDEN, FORBIDDEN],
        },
        Case {
            name: "update an asset",
            query: "mutation($id: ID!) { updateAsset(id: $id, input: { location: \"Gym\" }) { id } }",
            variables: |f| json!({ "id": f.asset }),
            expect: [OK, OK, FORBIDDEN, FORBIDDEN],
        },
        Case {
            name: "delete an asset",
            query: "mutation($id: ID!) { deleteAsset(id: $id) }",
            variables: |f| json!({ "id": f.asset }),
            expect: [OK, OK, FORBIDDEN, FORBIDDEN],
        },
        Case {
            name: "deactivate a therapist",
            query: "mutation($id: ID!) { deactivateUser(id: $id) { active } }",
            variables: |f| json!({ "id": f.therapist }),
            expect: [OK, OK, FORBIDDEN, FORBIDDEN],
        },
    ]
}

async fn fixture(
    app: &TestApp,
    admin_token: &str,
    n: usize,
    therapist: &str,
    admin: &str,
) -> Fixture {
    Fixture {
        asset: app
            .create_asset(admin_token, &format!("Matrix asset {n}"), None)
            .await,
        therapist: therapist.to_string(),
        admin: admin.to_string(),
        serial: format!("{n}-{}", uuid::Uuid::new_v4().simple()),
    }
}

#[tokio::test]
async fn every_role_is_allowed_or_refused_as_domain_md_says() {
    let app = spawn_app().await;
    let therapist_id = app.user_id("therapist").await;
    let admin_id = app.user_id("admin").await;
    let mut tokens = Vec::new();
    for role in ROLES {
        tokens.push(app.login(role).await);
    }
    let therapist_oid = alawael::domain::GlobalId::decode(&therapist_id).unwrap().id;
    let mut failures = Vec::new();
    let mut n = 0;
    for case in cases() {
        for (i, role) in ROLES.iter().enumerate() {
            n += 1;
            // A fresh asset for each call, so a deletion does not affect the next.
            let f = fixture(&app, &tokens[0], n, &therapist_id, &admin_id).await;
            let body = app
                .gql(Some(&tokens[i]), case.query, (case.variables)(&f))
                .await;
            let got = if body["errors"].is_null() {
                None
            } else {
                Some(error_code(&body).to_string())
            };
            if got.as_deref() != case.expect[i] {
                failures.push(format!(
                    "{role} / {}: expected {:?}, got {body}",
                    case.name, case.expect[i]
                ));
            }
            if case.expect[i].is_some() {
                assert!(
                    body["data"].is_null()
                        || body["data"]
                            .as_object()
                            .is_some_and(|d| d.values().all(Value::is_null)),
                    "no data on refusal: {body}"
                );
            }
            // Undo a deactivation; it ended the therapist's sessions, so
            // the therapist signs in again.
            app.state
                .db
                .users()
                .set_active(therapist_oid, true, bson::DateTime::now())
                .await
                .unwrap();
            if case.expect[i].is_none() && case.name == "deactivate a therapist" {
                app.state.accounts.forget(therapist_oid);
                let at = ROLES.iter().position(|r| *r == "therapist").unwrap();
                tokens[at] = app.login("therapist").await;
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn anonymous_callers_are_unauthenticated_everywhere_but_login() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let (therapist, admin_id) = (app.user_id("therapist").await, app.user_id("admin").await);
    let f = fixture(&app, &admin, 0, &therapist, &admin_id).await;
    for case in cases() {
        let body = app.gql(None, case.query, (case.variables)(&f)).await;
        assert_eq!(
            error_code(&body),
            "UNAUTHENTICATED",
            "{}: {body}",
            case.name
        );
    }
}

#[tokio::test]
async fn a_role_in_a_self_update_is_rejected_by_the_input_type() {
    let app = spawn_app().await;
    let token = app.login("user").await;
    let body = app
        .gql(
            Some(&token),
            "mutation { updateMe(input: { name: \"X Y\", role: ADMIN }) { name } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body}");
    let me = app
        .gql(Some(&token), "{ me { role name } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["role"], "USER");
    assert_ne!(me["data"]["me"]["name"], "X Y");
    let server_owned = app
        .gql(Some(&app.login("admin").await), "mutation { createAsset(input: { name: \"A\", category: IT, value: { amountMinor: 1, currency: \"SAR\" }, createdBy: \"x\" }) { id } }", json!({}))
        .await;
    assert_eq!(error_code(&server_owned), "GRAPHQL_VALIDATION_FAILED");
}
