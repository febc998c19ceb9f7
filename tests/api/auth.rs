//! Sign-in, token rotation and reuse detection, forged tokens, throttling.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use crate::support::helpers::{
    PASSWORD, TestApp, error_code, spawn_app, spawn_app_with, test_settings,
};

const ME: &str = "{ me { id email role } }";
const REFRESH: &str =
    "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }";

#[tokio::test]
async fn a_signed_in_user_reads_their_own_account() {
    let app = spawn_app().await;
    let login = app.login_full("therapist").await;
    assert_eq!(login["expiresIn"], 300);
    let me = app.gql(login["accessToken"].as_str(), ME, json!({})).await;
    assert_eq!(me["data"]["me"]["email"], "therapist@alawael.local");
    assert_eq!(me["data"]["me"]["role"], "THERAPIST");
}

#[tokio::test]
async fn anonymous_me_is_unauthenticated() {
    let app = spawn_app().await;
    let body = app.gql(None, ME, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert!(body["data"].is_null());
}

#[tokio::test]
async fn a_failed_login_says_the_same_whether_or_not_the_account_exists() {
    let app = spawn_app().await;
    let q = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }";
    let wrong = app
        .gql(
            None,
            q,
            json!({ "e": "admin@alawael.local", "p": "not-the-password" }),
        )
        .await;
    let unknown = app
        .gql(
            None,
            q,
            json!({ "e": "nobody@alawael.local", "p": "not-the-password" }),
        )
        .await;
    assert_eq!(error_code(&wrong), "UNAUTHENTICATED");
    assert_eq!(
        wrong["errors"][0]["message"],
        unknown["errors"][0]["message"]
    );
    assert_eq!(error_code(&unknown), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_refresh_rotates_the_token_and_the_old_one_stops_working() {
    let app = spawn_app().await;
    let login = app.login_full("user").await;
    let first = login["refreshToken"].as_str().unwrap();
    let rotated = app.gql(None, REFRESH, json!({ "t": first })).await;
    let second = rotated["data"]["refreshToken"]["refreshToken"]
        .as_str()
        .expect("rotated")
        .to_string();
    assert_ne!(first, second);
    let me = app
        .gql(
            rotated["data"]["refreshToken"]["accessToken"].as_str(),
            ME,
            json!({}),
        )
        .await;
    assert_eq!(me["data"]["me"]["email"], "user@alawael.local");
    let again = app.gql(None, REFRESH, json!({ "t": first })).await;
    assert_eq!(error_code(&again), "UNAUTHENTICATED");
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_family_and_is_audited() {
    let app = spawn_app().await;
    let login = app.login_full("user").await;
    let first = login["refreshToken"].as_str().unwrap();
    let rotated = app.gql(None, REFRESH, json!({ "t": first })).await;
    let live = rotated["data"]["refreshToken"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_string();

    let reuse = app.gql(None, REFRESH, json!({ "t": first })).await;
    assert_eq!(error_code(&reuse), "UNAUTHENTICATED");
    // The thief's reuse also ends the legitimate holder's session.
    let after = app.gql(None, REFRESH, json!({ "t": live })).await;
    assert_eq!(error_code(&after), "UNAUTHENTICATED");

    let user_hex = login["user"]["id"].as_str().map(decode_hex).unwrap();
    let entries = app
        .state
        .db
        .audit()
        .for_entity("User", &user_hex)
        .await
        .unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.action == "auth.refresh_token_reused"),
        "{entries:?}"
    );
}

#[tokio::test]
async fn of_two_simultaneous_refreshes_one_wins_and_reuse_revokes_the_family() {
    let app = spawn_app().await;
    // Several rounds, so the race is exercised in more than one interleaving.
    for round in 0..6 {
        let login = app.login_full("manager").await;
        let token = login["refreshToken"].as_str().unwrap();
        let (a, b) = tokio::join!(
            app.gql(None, REFRESH, json!({ "t": token })),
            app.gql(None, REFRESH, json!({ "t": token }))
        );
        let winners: Vec<&Value> = [&a, &b]
            .into_iter()
            .filter(|r| r["errors"].is_null())
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one refresh succeeds: {a} {b}"
        );
        let loser = if a["errors"].is_null() { &b } else { &a };
        assert_eq!(error_code(loser), "UNAUTHENTICATED");
        // The loser counts as reuse, so the winner's new token is revoked too.
        let next = winners[0]["data"]["refreshToken"]["refreshToken"]
            .as_str()
            .unwrap();
        let after = app.gql(None, REFRESH, json!({ "t": next })).await;
        assert_eq!(error_code(&after), "UNAUTHENTICATED", "round {round}");
    }
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = spawn_app().await;
    let login = app.login_full("user").await;
    let token = login["refreshToken"].as_str().unwrap();
    let out = app
        .gql(
            None,
            "mutation($t: String!) { logout(refreshToken: $t) }",
            json!({ "t": token }),
        )
        .await;
    assert_eq!(out["data"]["logout"], true);
    let again = app.gql(None, REFRESH, json!({ "t": token })).await;
    assert_eq!(error_code(&again), "UNAUTHENTICATED");
}

fn decode_hex(global: &str) -> String {
    let raw = URL_SAFE_NO_PAD.decode(global).unwrap();
    String::from_utf8(raw)
        .unwrap()
        .split_once(':')
        .unwrap()
        .1
        .to_string()
}

fn sign(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn forged_expired_and_misaddressed_tokens_fail_the_whole_request() {
    let app = spawn_app().await;
    let secret = app.state.settings.auth.secret().to_string();
    let sub = decode_hex(&app.user_id("admin").await);
    let now = chrono::Utc::now().timestamp();
    let claims = |patch: Value| {
        let mut c = json!({ "iss": "alawael", "aud": "alawael-api", "sub": sub, "role": "ADMIN",
            "iat": now, "nbf": now, "exp": now + 300, "jti": "x", "typ": "access" });
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(json!({})).to_string())
    );
    let login = app.login_full("user").await;
    let cases: Vec<(&str, String)> = vec![
        ("alg none", alg_none),
        (
            "another key",
            sign(&claims(json!({})), "not-the-server-secret-at-all-nope"),
        ),
        (
            "signed with a public key as HMAC secret",
            sign(
                &claims(json!({})),
                "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
            ),
        ),
        (
            "expired",
            sign(&claims(json!({ "exp": now - 3600 })), &secret),
        ),
        ("no exp", sign(&claims(json!({ "exp": null })), &secret)),
        (
            "future nbf",
            sign(&claims(json!({ "nbf": now + 3600 })), &secret),
        ),
        (
            "wrong audience",
            sign(&claims(json!({ "aud": "another-api" })), &secret),
        ),
        (
            "no audience",
            sign(&claims(json!({ "aud": null })), &secret),
        ),
        (
            "wrong issuer",
            sign(&claims(json!({ "iss": "someone-else" })), &secret),
        ),
        (
            "not an access token",
            sign(&claims(json!({ "typ": "refresh" })), &secret),
        ),
        (
            "a refresh token",
            login["refreshToken"].as_str().unwrap().to_string(),
        ),
        ("garbage", "not.a.token".to_string()),
    ];
    for (name, token) in cases {
        let body = app
            .gql(
                Some(&token),
                "{ assets(first: 1) { totalCount } }",
                json!({}),
            )
            .await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{name}: {body}");
        assert!(body["data"].is_null(), "{name}: no data with a bad token");
    }
    // The well-formed token made the same way works, so the cases above fail for their reason.
    let good = sign(&claims(json!({})), &secret);
    let body = app.gql(Some(&good), "{ me { email } }", json!({})).await;
    assert_eq!(body["data"]["me"]["email"], "admin@alawael.local", "{body}");
}

#[tokio::test]
async fn a_deactivated_users_token_is_refused() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let user_token = app.login("user").await;
    let user_id = app.user_id("user").await;
    let body = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { deactivateUser(id: $id) { active } }",
            json!({ "id": user_id }),
        )
        .await;
    assert_eq!(body["data"]["deactivateUser"]["active"], false, "{body}");
    let me = app.gql(Some(&user_token), ME, json!({})).await;
    assert_eq!(error_code(&me), "UNAUTHENTICATED");
    let login = app
        .gql(None, "mutation { login(email: \"user@alawael.local\", password: \"test-seed-password-1\") { accessToken } }", json!({}))
        .await;
    assert_eq!(error_code(&login), "UNAUTHENTICATED");
}

#[tokio::test]
async fn one_hundred_aliased_logins_count_every_attempt_against_the_account() {
    let app = spawn_app().await;
    let fields: Vec<String> = (0..100)
        .map(|i| format!("a{i}: login(email: \"manager@alawael.local\", password: \"guess-{i}\") {{ accessToken }}"))
        .collect();
    let body = app
        .http
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": format!("mutation {{ {} }}", fields.join(" ")) }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    // Over the root-field and alias limits: refused whole, so no attempt ran at all.
    assert!(
        ["TOO_MANY_ROOT_FIELDS", "TOO_MANY_ALIASES"].contains(&error_code(&body)),
        "{body}"
    );
    assert!(body["data"].is_null());

    // Within the alias limit, each attempt counts: 5 failures, then throttled.
    let fields: Vec<String> = (0..12)
        .map(|i| format!("a{i}: login(email: \"manager@alawael.local\", password: \"guess-{i}\") {{ accessToken }}"))
        .collect();
    let body = app
        .gql(
            None,
            &format!("mutation {{ {} }}", fields.join(" ")),
            json!({}),
        )
        .await;
    let codes: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["extensions"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes.iter().filter(|c| **c == "UNAUTHENTICATED").count(),
        5,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == "RATE_LIMITED").count(),
        7,
        "{codes:?}"
    );
    let limited = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["extensions"]["code"] == "RATE_LIMITED")
        .unwrap();
    assert!(limited["extensions"]["retryAfterSeconds"].as_u64().unwrap() > 0);
    // Now even the right password is refused until the window passes.
    let right = app
        .gql(None, "mutation($p: String!) { login(email: \"manager@alawael.local\", password: $p) { accessToken } }", json!({ "p": PASSWORD }))
        .await;
    assert_eq!(error_code(&right), "RATE_LIMITED");
}

#[tokio::test]
async fn failures_from_one_address_are_throttled_across_accounts() {
    let app = spawn_app().await;
    let q =
        "mutation($e: String!) { login(email: $e, password: \"wrong-password\") { accessToken } }";
    let mut codes = Vec::new();
    for i in 0..22 {
        let body = app
            .gql(None, q, json!({ "e": format!("person{i}@alawael.local") }))
            .await;
        codes.push(error_code(&body).to_string());
    }
    assert!(
        codes[..20].iter().all(|c| c == "UNAUTHENTICATED"),
        "{codes:?}"
    );
    assert!(codes[20..].iter().all(|c| c == "RATE_LIMITED"), "{codes:?}");
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id_at_owasp_parameters() {
    let app = spawn_app().await;
    let email = alawael::domain::Email::parse("admin@alawael.local").unwrap();
    let user = app
        .state
        .db
        .users()
        .find_by_email(&email)
        .await
        .unwrap()
        .unwrap();
    assert!(
        user.password_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        user.password_hash
    );
}

/// A sign-in sent through the trusted proxy for `forwarded_for`.
async fn login_via(app: &TestApp, forwarded_for: &str, password: &str) -> Value {
    app.http
        .post(format!("{}/graphql", app.address))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({
            "query": "mutation($p: String!) { login(email: \"admin@alawael.local\", password: $p) { accessToken } }",
            "variables": { "p": password },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_attacker_without_the_password_cannot_keep_the_owner_from_signing_in() {
    // Behind one proxy (the peer): the client is the rightmost entry.
    let app = spawn_app_with(|s| s.server.trust_forwarded_for = true).await;
    let attacker = "203.0.113.9";
    let mut codes = Vec::new();
    for i in 0..7 {
        let body = login_via(&app, attacker, &format!("guess-{i}")).await;
        codes.push(error_code(&body).to_string());
    }
    assert_eq!(codes[..5], ["UNAUTHENTICATED"; 5], "{codes:?}");
    assert_eq!(codes[5..], ["RATE_LIMITED"; 2], "{codes:?}");
    // The attacker's address is locked for this account, even with the password...
    assert_eq!(
        error_code(&login_via(&app, attacker, PASSWORD).await),
        "RATE_LIMITED"
    );
    // ...and writing other addresses to the left of the header changes nothing.
    for forged in ["198.51.100.7", "10.0.0.1", "1.2.3.4"] {
        let body = login_via(&app, &format!("{forged}, {attacker}"), PASSWORD).await;
        assert_eq!(error_code(&body), "RATE_LIMITED", "{forged}: {body}");
    }
    // The owner, from an address that has not been failing, signs in.
    let owner = login_via(&app, "198.51.100.7", PASSWORD).await;
    assert!(owner["data"]["login"]["accessToken"].is_string(), "{owner}");
    // The lockout is in the audit log for ADMIN, with the address.
    let token = owner["data"]["login"]["accessToken"].as_str().unwrap();
    let audit = app
        .gql(
            Some(token),
            "{ auditLog(first: 20, filter: { entityType: \"User\" }) { nodes { action changes { field after } } } }",
            json!({}),
        )
        .await;
    let lockouts: Vec<&Value> = audit["data"]["auditLog"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["action"] == "auth.lockout")
        .collect();
    assert_eq!(lockouts.len(), 1, "{audit}");
    assert_eq!(lockouts[0]["changes"][0]["after"], attacker);
}

#[test]
fn forwarded_for_is_read_from_the_right_skipping_the_trusted_proxies() {
    use alawael::http::client_address;
    use axum::http::HeaderMap;
    let settings = |trust: bool, proxies: &[&str]| {
        let mut settings = test_settings(alawael::config::Environment::Test).server;
        settings.trust_forwarded_for = trust;
        settings.trusted_proxies = proxies.iter().map(|p| p.parse().unwrap()).collect();
        settings
    };
    let headers = |value: &str| {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().unwrap());
        headers
    };
    let peer: std::net::SocketAddr = "10.0.0.5:443".parse().unwrap();
    let chain = headers("6.6.6.6, 203.0.113.9, 10.0.0.7");
    // Not trusted: the peer, whatever the header says.
    assert_eq!(
        client_address(&chain, peer, &settings(false, &[])),
        "10.0.0.5"
    );
    // Two proxies in 10/8: the first entry from the right outside them.
    assert_eq!(
        client_address(&chain, peer, &settings(true, &["10.0.0.0/8"])),
        "203.0.113.9"
    );
    // One proxy (the peer): the rightmost entry.
    assert_eq!(
        client_address(&chain, peer, &settings(true, &[])),
        "10.0.0.7"
    );
    // A peer that is not a listed proxy: its header is not believed.
    assert_eq!(
        client_address(&chain, peer, &settings(true, &["192.168.0.0/16"])),
        "10.0.0.5"
    );
    // A malformed hop ends the walk: nothing to its left is believed.
    let broken = headers("6.6.6.6, garbage, 10.0.0.7");
    assert_eq!(
        client_address(&broken, peer, &settings(true, &["10.0.0.0/8"])),
        "10.0.0.5"
    );
}
