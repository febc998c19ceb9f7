//! HTTPS served directly with rustls when a certificate and key are configured.

use serde_json::Value;

use crate::support::helpers::spawn_app_with;

#[tokio::test]
async fn the_server_speaks_https_with_a_configured_certificate() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = std::env::temp_dir().join(format!("alawael-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let app = spawn_app_with(|s| {
        s.server.tls_cert_path = Some(cert.clone());
        s.server.tls_key_path = Some(key.clone());
    })
    .await;
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap(),
        )
        .resolve(
            "localhost",
            format!("127.0.0.1:{}", app.port).parse().unwrap(),
        )
        .build()
        .unwrap();
    let response = client
        .get(format!("https://localhost:{}/health/ready", app.port))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["checks"]["mongodb"]["status"], "ok");
    let plain = reqwest::get(format!("http://127.0.0.1:{}/health/live", app.port)).await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plain HTTP is not served on the TLS port"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
