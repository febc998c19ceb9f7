//! Sessions that end when they should (SECURITY.md 32): a password change
//! or reset, a role change and a deactivation end every session of the
//! account at once, on every instance (refresh tokens, access tokens,
//! websockets); `logout` and `revokeSession` end one session whole; a
//! person sees their own sessions.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::helpers::{
    PASSWORD, TestApp, error_code, spawn_app, spawn_with_settings, test_settings,
};
use crate::websockets::{init, next};

const ME: &str = "{ me { id } }";
const REFRESH: &str =
    "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }";
const NEW_PASSWORD: &str = "a-brand-new-password-2026";

/// Signs in as `who` from a device; returns (access, refresh).
async fn sign_in(app: &TestApp, who: &str, device: &str) -> (String, String) {
    let body: Value = app
        .http
        .post(format!("{}/graphql", app.address))
        .header("user-agent", device)
        .json(&json!({
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken } }",
            "variables": { "e": format!("{who}@alawael.local"), "p": PASSWORD },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let login = &body["data"]["login"];
    assert!(login["accessToken"].is_string(), "{body}");
    (
        login["accessToken"].as_str().unwrap().to_string(),
        login["refreshToken"].as_str().unwrap().to_string(),
    )
}

async fn works(app: &TestApp, access: &str) -> bool {
    app.gql(Some(access), ME, json!({})).await["data"]["me"]["id"].is_string()
}

async fn refreshes(app: &TestApp, refresh: &str) -> bool {
    app.gql(None, REFRESH, json!({ "t": refresh })).await["errors"].is_null()
}

/// Waits (a second at most) until `access` is refused.
async fn refused_soon(app: &TestApp, access: &str) {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let body = app.gql(Some(access), ME, json!({})).await;
        if error_code(&body) == "UNAUTHENTICATED" {
            assert!(
                body["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("session has ended"),
                "{body}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still accepted after a second: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn changing_ones_password_ends_every_session_on_every_instance() {
    std::env::var("REDIS_URL").expect("scripts/test provides Redis");
    let settings = test_settings(alawael::config::Environment::Test);
    let a = spawn_with_settings(settings.clone()).await;
    let b = spawn_with_settings(settings).await;
    let (phone_access, phone_refresh) = sign_in(&a, "therapist", "phone").await;
    let (laptop_access, laptop_refresh) = sign_in(&a, "therapist", "laptop").await;
    // Both sessions are known on the other instance too (its account cache warm).
    assert!(works(&b, &phone_access).await && works(&b, &laptop_access).await);
    let mut socket = init(&b, &phone_access).await;

    let wrong = a
        .gql(
            Some(&laptop_access),
            "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { accessToken } }",
            json!({ "c": "not-the-password", "n": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT", "{wrong}");
    let changed = a
        .gql(
            Some(&laptop_access),
            "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { accessToken refreshToken } }",
            json!({ "c": PASSWORD, "n": NEW_PASSWORD }),
        )
        .await;
    let fresh = changed["data"]["changePassword"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{changed}"))
        .to_string();
    // Every old token is refused, on both instances, within a second.
    for app in [&a, &b] {
        refused_soon(app, &phone_access).await;
        refused_soon(app, &laptop_access).await;
        assert!(works(app, &fresh).await, "the new session works");
    }
    assert!(!refreshes(&a, &phone_refresh).await);
    assert!(!refreshes(&b, &laptop_refresh).await);
    // The websocket on the other instance is closed with 4403.
    let closed = loop {
        match next(&mut socket).await {
            Err(code) => break code,
            Ok(_) => continue,
        }
    };
    assert_eq!(closed, 4403);
    // The old password no longer signs in; the new one does.
    let old = a
        .gql(
            None,
            "mutation($p: String!) { login(email: \"therapist@alawael.local\", password: $p) { accessToken } }",
            json!({ "p": PASSWORD }),
        )
        .await;
    assert_eq!(error_code(&old), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_reset_a_role_change_and_a_deactivation_end_every_session() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let user_id = app.user_id("user").await;
    let update =
        "mutation($id: ID!, $i: UpdateUserInput!) { updateUser(id: $id, input: $i) { id } }";

    let (access, refresh) = sign_in(&app, "user", "desk").await;
    assert!(works(&app, &access).await);
    let reset = app
        .gql(
            Some(&admin),
            update,
            json!({ "id": user_id, "i": { "password": NEW_PASSWORD } }),
        )
        .await;
    assert!(reset["errors"].is_null(), "{reset}");
    refused_soon(&app, &access).await;
    assert!(!refreshes(&app, &refresh).await);

    let signed_in = app
        .gql(
            None,
            "mutation($p: String!) { login(email: \"user@alawael.local\", password: $p) { accessToken refreshToken } }",
            json!({ "p": NEW_PASSWORD }),
        )
        .await;
    let access = signed_in["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let refresh = signed_in["data"]["login"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_string();
    let promoted = app
        .gql(
            Some(&admin),
            update,
            json!({ "id": user_id, "i": { "role": "THERAPIST" } }),
        )
        .await;
    assert!(promoted["errors"].is_null(), "{promoted}");
    refused_soon(&app, &access).await;
    assert!(!refreshes(&app, &refresh).await);

    // A name change ends nothing.
    let signed_in = app
        .gql(
            None,
            "mutation($p: String!) { login(email: \"user@alawael.local\", password: $p) { accessToken } }",
            json!({ "p": NEW_PASSWORD }),
        )
        .await;
    let access = signed_in["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    app.gql(
        Some(&admin),
        update,
        json!({ "id": user_id, "i": { "name": "Front Desk" } }),
    )
    .await;
    assert!(works(&app, &access).await);
    let deactivated = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
            json!({ "id": user_id }),
        )
        .await;
    assert!(deactivated["errors"].is_null(), "{deactivated}");
    assert_eq!(
        error_code(&app.gql(Some(&access), ME, json!({})).await),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn a_person_sees_their_sessions_and_ending_one_ends_it_whole() {
    let app = spawn_app().await;
    let (phone_access, phone_refresh) = sign_in(&app, "manager", "phone").await;
    let (laptop_access, laptop_refresh) = sign_in(&app, "manager", "laptop").await;
    let mut phone_socket = init(&app, &phone_access).await;

    let listed = app
        .gql(
            Some(&laptop_access),
            "{ sessions { id device address current createdAt lastUsedAt } }",
            json!({}),
        )
        .await;
    let sessions = listed["data"]["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(sessions.len(), 2, "{listed}");
    let phone = sessions.iter().find(|s| s["device"] == "phone").unwrap();
    let laptop = sessions.iter().find(|s| s["device"] == "laptop").unwrap();
    assert_eq!(
        (phone["current"].as_bool(), laptop["current"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(laptop["address"], "127.0.0.1");

    // Another person's session is not theirs to end.
    let other = app.login("admin").await;
    let foreign = app
        .gql(
            Some(&other),
            "mutation($id: ID!) { revokeSession(id: $id) }",
            json!({ "id": phone["id"] }),
        )
        .await;
    assert_eq!(error_code(&foreign), "NOT_FOUND", "{foreign}");

    // Ending the phone's session from the laptop ends it whole.
    let ended = app
        .gql(
            Some(&laptop_access),
            "mutation($id: ID!) { revokeSession(id: $id) }",
            json!({ "id": phone["id"] }),
        )
        .await;
    assert_eq!(ended["data"]["revokeSession"], true, "{ended}");
    refused_soon(&app, &phone_access).await;
    assert!(!refreshes(&app, &phone_refresh).await);
    assert_eq!(next(&mut phone_socket).await, Err(4403));
    assert!(
        works(&app, &laptop_access).await,
        "the other session goes on"
    );

    // Logout ends the laptop's access token too, not only its refresh token.
    let out = app
        .gql(
            None,
            "mutation($t: String!) { logout(refreshToken: $t) }",
            json!({ "t": laptop_refresh }),
        )
        .await;
    assert_eq!(out["data"]["logout"], true, "{out}");
    refused_soon(&app, &laptop_access).await;
}
