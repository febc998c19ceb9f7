//! Configuration: layering, unknown keys, and what production refuses.

use std::collections::HashMap;
use std::path::Path;

use alawael::config::{Environment, load_from};

use crate::support::helpers::TEST_MASTER_KEY;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn variables_override_files_and_shortcuts_override_both() {
    let settings = load_from(
        Path::new("config"),
        Environment::Development,
        &vars(&[
            ("ALAWAEL__GRAPHQL__MAX_DEPTH", "7"),
            ("MONGODB_URI", "mongodb://db.internal:27017/centre"),
        ]),
    )
    .unwrap();
    assert_eq!(settings.graphql.max_depth, 7);
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&settings.database.uri),
        "mongodb://db.internal:27017/centre"
    );
    assert!(settings.uses_development_secret());
}

#[test]
fn serving_threads_are_bounded_and_zero_means_one_per_cpu() {
    let load = |threads: &str| {
        load_from(
            Path::new("config"),
            Environment::Development,
            &vars(&[("ALAWAEL__SERVER__THREADS", threads)]),
        )
    };
    assert_eq!(load("0").unwrap().server.threads, 0);
    assert_eq!(load("256").unwrap().server.threads, 256);
    let error = load("257").unwrap_err().to_string();
    assert!(error.contains("server.threads is at most 256"), "{error}");
}

#[test]
fn an_unknown_key_is_an_error() {
    let error = load_from(
        Path::new("config"),
        Environment::Development,
        &vars(&[("ALAWAEL__GRAPHQL__MAX_DEPHT", "7")]),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("max_depht"), "{error}");
}

#[test]
fn production_refuses_a_missing_short_or_published_secret() {
    let secret = "a-private-secret-of-more-than-32-characters";
    let cases = [
        (
            vars(&[("SEED_PASSWORD", "private-seed-password")]),
            "JWT_SECRET is not set",
        ),
        (
            vars(&[
                ("JWT_SECRET", alawael::config::DEVELOPMENT_JWT_SECRET),
                ("SEED_PASSWORD", "private"),
            ]),
            "published development secret",
        ),
        (
            vars(&[("JWT_SECRET", "short"), ("SEED_PASSWORD", "private")]),
            "shorter than 32",
        ),
    ];
    for (vars, expected) in cases {
        let error = load_from(Path::new("config"), Environment::Production, &vars)
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{error}");
    }
    let ok = load_from(
        Path::new("config"),
        Environment::Production,
        &vars(&[
            ("JWT_SECRET", secret),
            ("SEED_PASSWORD", "private"),
            ("ALAWAEL_MASTER_KEY", TEST_MASTER_KEY),
        ]),
    )
    .unwrap();
    assert!(!ok.graphql.introspection && !ok.server.graphiql);
}

#[test]
fn production_refuses_to_start_without_a_private_master_key() {
    let secret = "a-private-secret-of-more-than-32-characters";
    let load = |extra: &[(&str, &str)]| {
        let mut pairs = vec![("JWT_SECRET", secret), ("SEED_PASSWORD", "private")];
        pairs.extend_from_slice(extra);
        load_from(Path::new("config"), Environment::Production, &vars(&pairs))
    };
    let error = load(&[]).unwrap_err().to_string();
    assert!(error.contains("no master key"), "{error}");
    let error = load(&[("ALAWAEL_MASTER_KEY", alawael::vault::DEVELOPMENT_MASTER_KEY)])
        .unwrap_err()
        .to_string();
    assert!(error.contains("published development key"), "{error}");
    let error = load(&[
        ("ALAWAEL_MASTER_KEY", TEST_MASTER_KEY),
        ("ALAWAEL__VAULT__MASTER_KEY_FILE", "/run/secrets/keys"),
    ])
    .unwrap_err()
    .to_string();
    assert!(error.contains("not both"), "{error}");
    let settings = load(&[("ALAWAEL_MASTER_KEY", TEST_MASTER_KEY)]).unwrap();
    // The key never prints with the settings.
    assert!(!format!("{settings:?}").contains("YWxhd2FlbC10ZXN0"));
    // The binary says why it will not serve, without showing any key.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_alawael"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env_clear()
        .env("ALAWAEL_ENV", "production")
        .env("JWT_SECRET", secret)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no master key"), "{stderr}");
    // Development runs on the published key, and says so.
    let dev = load_from(Path::new("config"), Environment::Development, &vars(&[])).unwrap();
    assert!(dev.vault.uses_development_key());
}

#[test]
fn the_binary_refuses_to_serve_in_production_without_a_secret_and_says_why() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_alawael"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env_clear()
        .env("ALAWAEL_ENV", "production")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("JWT_SECRET"), "{stderr}");
}

#[test]
fn seeding_in_production_needs_a_private_seed_password() {
    let secret = "a-private-secret-of-more-than-32-characters";
    let settings = load_from(
        Path::new("config"),
        Environment::Production,
        &vars(&[
            ("JWT_SECRET", secret),
            ("ALAWAEL_MASTER_KEY", TEST_MASTER_KEY),
        ]),
    )
    .unwrap();
    let error = settings.check_seed_password().unwrap_err().to_string();
    assert!(
        error.contains("SEED_PASSWORD is the published development password"),
        "{error}"
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_alawael"))
        .arg("seed")
        .env_clear()
        .env("ALAWAEL_ENV", "production")
        .env("JWT_SECRET", secret)
        .env("ALAWAEL_MASTER_KEY", TEST_MASTER_KEY)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("SEED_PASSWORD"));
    let dev = load_from(Path::new("config"), Environment::Development, &vars(&[])).unwrap();
    assert!(dev.check_seed_password().is_ok());
}
