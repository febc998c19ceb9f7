//! Accounts: creation rules, case-insensitive unique e-mails, role limits,
//! listing, deactivation, and what the audit log keeps of them.

use serde_json::json;

use crate::support::helpers::{error_code, spawn_app};

const CREATE: &str =
    "mutation($i: CreateUserInput!) { createUser(input: $i) { id email role active } }";

fn input(email: &str, role: &str, password: &str) -> serde_json::Value {
    json!({ "i": { "email": email, "name": "Sara Al-Mutairi", "role": role, "password": password, "department": "Speech" } })
}

#[tokio::test]
async fn emails_are_stored_lower_cased_and_unique_whatever_their_case() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let body = app
        .gql(
            Some(&admin),
            CREATE,
            input("Sara.M@Alawael.Local", "THERAPIST", "a-long-password-1"),
        )
        .await;
    assert_eq!(
        body["data"]["createUser"]["email"], "sara.m@alawael.local",
        "{body}"
    );
    assert_eq!(body["data"]["createUser"]["active"], true);
    let again = app
        .gql(
            Some(&admin),
            CREATE,
            input("sara.m@alawael.local", "USER", "a-long-password-1"),
        )
        .await;
    assert_eq!(error_code(&again), "CONFLICT", "{again}");
    // The new account signs in with any case of its address.
    let login = app
        .gql(None, "mutation { login(email: \"SARA.M@alawael.local\", password: \"a-long-password-1\") { user { role } } }", json!({}))
        .await;
    assert_eq!(
        login["data"]["login"]["user"]["role"], "THERAPIST",
        "{login}"
    );
}

#[tokio::test]
async fn bad_account_input_is_refused_and_nothing_is_written() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    for (email, password, field) in [
        ("not-an-email", "a-long-password-1", "input.email"),
        ("{\"$gt\": \"\"}", "a-long-password-1", "input.email"),
        ("short@alawael.local", "short", "input.password"),
    ] {
        let body = app
            .gql(Some(&admin), CREATE, input(email, "USER", password))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field);
    }
    let list = app
        .gql(Some(&admin), "{ users { totalCount } }", json!({}))
        .await;
    assert_eq!(list["data"]["users"]["totalCount"], 4);
}

#[tokio::test]
async fn a_manager_cannot_raise_anyone_to_manager_or_admin() {
    let app = spawn_app().await;
    let manager = app.login("manager").await;
    let therapist = app.user_id("therapist").await;
    let body = app
        .gql(
            Some(&manager),
            "mutation($id: ID!) { updateUser(id: $id, input: { role: ADMIN }) { role } }",
            json!({ "id": therapist }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    let body = app
        .gql(
            Some(&manager),
            "mutation($id: ID!) { updateUser(id: $id, input: { role: USER }) { role } }",
            json!({ "id": therapist }),
        )
        .await;
    assert_eq!(body["data"]["updateUser"]["role"], "USER", "{body}");
}

#[tokio::test]
async fn users_can_be_filtered_searched_and_ordered() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let q = "query($f: UserFilter, $o: UserOrder) { users(filter: $f, orderBy: $o) { totalCount nodes { email } } }";
    let therapists = app
        .gql(
            Some(&admin),
            q,
            json!({ "f": { "role": ["THERAPIST", "USER"] } }),
        )
        .await;
    assert_eq!(therapists["data"]["users"]["totalCount"], 2, "{therapists}");
    let search = app
        .gql(Some(&admin), q, json!({ "f": { "search": "MANAGER@" } }))
        .await;
    assert_eq!(
        search["data"]["users"]["nodes"][0]["email"],
        "manager@alawael.local"
    );
    let ordered = app
        .gql(
            Some(&admin),
            q,
            json!({ "o": { "field": "NAME", "direction": "DESC" } }),
        )
        .await;
    let emails: Vec<&str> = ordered["data"]["users"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["email"].as_str().unwrap())
        .collect();
    // Seeded names: Noura (therapist), Khalid (manager), Faisal (user), Amal (admin).
    assert_eq!(
        emails,
        [
            "therapist@alawael.local",
            "manager@alawael.local",
            "user@alawael.local",
            "admin@alawael.local"
        ]
    );
}

#[tokio::test]
async fn nobody_deactivates_their_own_account_and_audit_entries_hold_no_password() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let me = app.user_id("admin").await;
    let body = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
            json!({ "id": me }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let created = app
        .gql(
            Some(&admin),
            CREATE,
            input("new.one@alawael.local", "USER", "a-long-password-1"),
        )
        .await;
    let id =
        alawael::domain::GlobalId::decode(created["data"]["createUser"]["id"].as_str().unwrap())
            .unwrap()
            .id;
    let entries = app.audit_for("User", id).await;
    let change = entries[0]
        .changes
        .iter()
        .find(|c| c.field == "passwordHash")
        .expect("the hash field is recorded as changed");
    assert_eq!(change.after.as_str(), Some("[redacted]"));
    assert!(!format!("{entries:?}").contains("argon2"));
}

#[tokio::test]
async fn an_update_clears_optional_fields_with_null_and_refuses_null_for_required_ones() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let user = app.user_id("user").await;
    let q = "mutation($id: ID!, $i: UpdateUserInput!) { updateUser(id: $id, input: $i) { name phone department role } }";
    let cleared = app
        .gql(
            Some(&admin),
            q,
            json!({ "id": user, "i": { "phone": null } }),
        )
        .await;
    assert!(
        cleared["data"]["updateUser"]["phone"].is_null(),
        "{cleared}"
    );
    assert_eq!(
        cleared["data"]["updateUser"]["department"], "Front Desk",
        "absent fields stay"
    );
    for field in ["name", "role", "password"] {
        let body = app
            .gql(Some(&admin), q, json!({ "id": user, "i": { field: null } }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{field}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"],
            format!("input.{field}")
        );
    }
    let me = app
        .gql(
            Some(&app.login("user").await),
            "{ me { name role } }",
            json!({}),
        )
        .await;
    assert_eq!(me["data"]["me"]["role"], "USER");
    assert_eq!(me["data"]["me"]["name"], "Faisal Al-Dosari");
}
