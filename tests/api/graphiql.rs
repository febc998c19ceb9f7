//! GraphiQL without the internet: the page's assets come from the server
//! (embedded, cached, gone in production), and the page, driven in headless
//! Chromium, renders, runs a query over HTTP and a subscription over
//! `/graphql/ws` while asking nothing of any other host.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::browser::Browser;
use crate::support::helpers::{TestApp, spawn_app_with, spawn_with_settings, test_settings};

const LIMIT: Duration = Duration::from_secs(30);

/// The page's stylesheet and script URLs, as the HTML names them.
fn asset_urls(html: &str) -> Vec<String> {
    html.split("\"/graphiql/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|url| format!("/graphiql/{url}"))
        .collect()
}

async fn page_html(app: &TestApp) -> String {
    page(app).await.1
}

/// The page's Content-Security-Policy and HTML.
async fn page(app: &TestApp) -> (String, String) {
    let response = app
        .http
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    (csp, response.text().await.unwrap())
}

#[tokio::test]
async fn inline_styles_need_the_nonce_of_the_response_and_nothing_comes_from_elsewhere() {
    let app = spawn_app_with(|s| s.server.graphiql = true).await;
    let mut nonces = Vec::new();
    for _ in 0..2 {
        let (csp, html) = page(&app).await;
        let nonce = csp
            .split("style-src 'self' 'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("a style nonce in {csp}"));
        assert!(
            html.contains(&format!("<style nonce=\"{nonce}\">")),
            "{html}"
        );
        assert!(
            csp.contains(&format!(
                "connect-src 'self' ws://127.0.0.1:{0} wss://127.0.0.1:{0};",
                app.port
            )),
            "{csp}"
        );
        assert!(!csp.contains("unsafe") && !csp.contains("http"), "{csp}");
        assert!(!html.contains("unpkg") && !html.contains("https://"));
        nonces.push(nonce.to_string());
    }
    assert_ne!(nonces[0], nonces[1], "a fresh nonce per response");
}

#[tokio::test]
async fn the_page_assets_are_served_from_the_binary_with_long_caching_and_not_in_production() {
    let app = spawn_app_with(|s| s.server.graphiql = true).await;
    let urls = asset_urls(&page_html(&app).await);
    assert_eq!(urls.len(), 5, "{urls:?}");
    for url in &urls {
        let response = app.get(url).await;
        assert_eq!(response.status(), 200, "{url}");
        let headers = response.headers().clone();
        let expected = if url.contains(".css?") {
            "text/css; charset=utf-8"
        } else {
            "text/javascript; charset=utf-8"
        };
        assert_eq!(headers["content-type"], expected, "{url}");
        assert_eq!(
            headers["cache-control"], "public, max-age=31536000, immutable",
            "{url}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let body = response.bytes().await.unwrap();
        let version = url.split("?v=").nth(1).expect("a versioned URL");
        assert!(
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body)).starts_with(version),
            "{url} is the file its URL names"
        );
    }
    let licence = app.get("/graphiql/graphiql.LICENSE").await;
    assert_eq!(licence.status(), 200);
    assert!(licence.text().await.unwrap().contains("MIT License"));
    assert_eq!(app.get("/graphiql/graphiql.min.js.map").await.status(), 404);
    assert_eq!(app.get("/graphiql/..%2FCargo.toml").await.status(), 404);

    let production =
        spawn_with_settings(test_settings(alawael::config::Environment::Production)).await;
    assert_eq!(production.get(&urls[0]).await.status(), 404);
}

/// Runs before any script of the page: keeps every CSP violation.
const RECORD_CSP_VIOLATIONS: &str = "window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
});";

/// The text in one of GraphiQL's editors (`query`, `headers`, `result`), or
/// null while it is not there.
const VALUE: &str = "(function (name) { var e = name === 'query' ? document.querySelector('.graphiql-query-editor .CodeMirror') : name === 'headers' ? document.querySelectorAll('.graphiql-editor-tool .CodeMirror')[1] : document.querySelector('.result-window .CodeMirror'); return e && e.CodeMirror ? e.CodeMirror.getValue() : null; })";

async fn click_run(browser: &mut Browser) {
    browser
        .wait_for(
            "the run button is there",
            "(function () { var b = document.querySelector('.graphiql-execute-button'); if (!b) return false; b.click(); return true; })()",
            LIMIT,
        )
        .await;
}

/// Everything the page asked for, which must all be this server.
fn requested_urls(browser: &Browser) -> Vec<String> {
    let mut urls: Vec<String> = browser
        .events_named("Network.requestWillBeSent")
        .iter()
        .map(|p| p["request"]["url"].as_str().unwrap_or_default().to_string())
        .collect();
    urls.extend(
        browser
            .events_named("Network.webSocketCreated")
            .iter()
            .map(|p| p["url"].as_str().unwrap_or_default().to_string()),
    );
    urls
}

async fn assert_clean(browser: &mut Browser, app: &TestApp) {
    let violations = browser.eval("window.__cspViolations").await;
    assert_eq!(violations, json!([]), "CSP violations");
    let errors = browser.errors();
    assert!(errors.is_empty(), "the page has errors: {errors:#?}");
    let http = format!("http://127.0.0.1:{}/", app.port);
    let ws = format!("ws://127.0.0.1:{}/", app.port);
    for url in requested_urls(browser) {
        assert!(
            url.starts_with(&http) || url.starts_with(&ws) || url.starts_with("data:"),
            "the page asked another host for {url}"
        );
    }
    let entries = browser
        .eval("performance.getEntriesByType('resource').map(e => [e.name, e.responseStatus])")
        .await;
    for entry in entries.as_array().expect("resource entries") {
        let url = entry[0].as_str().unwrap_or_default();
        assert!(url.starts_with(&http), "resource from elsewhere: {entry}");
        assert_eq!(entry[1], 200, "{entry}");
    }
}

#[tokio::test]
async fn graphiql_runs_a_query_and_a_subscription_with_nothing_but_this_server() {
    let app = spawn_app_with(|s| s.server.graphiql = true).await;
    let token = app.login("manager").await;
    let page = format!("{}/graphql", app.address);
    let mut browser = Browser::launch(RECORD_CSP_VIOLATIONS).await;

    // A fresh browser: the page renders from this server's assets alone.
    let started = Instant::now();
    browser.navigate(&page).await;
    browser
        .wait_for(
            "GraphiQL renders its editors",
            "!!document.querySelector('.graphiql-container .graphiql-query-editor .CodeMirror') && !!document.querySelector('.graphiql-execute-button')",
            LIMIT,
        )
        .await;
    eprintln!("GraphiQL rendered in {:?}", started.elapsed());
    // A first visit loads the schema: the documentation explorer shows it.
    browser
        .eval(
            "document.querySelector('[aria-label=\"Show Documentation Explorer\"]').click(); true",
        )
        .await;
    browser
        .wait_for(
            "the documentation explorer shows the schema",
            "(document.querySelector('.graphiql-doc-explorer') || {innerText: ''}).innerText.includes('subscription: Subscription')",
            LIMIT,
        )
        .await;
    let loaded = requested_urls(&browser);
    for asset in asset_urls(&page_html(&app).await) {
        assert!(
            loaded.iter().any(|u| u.ends_with(&asset)),
            "{asset} loaded: {loaded:#?}"
        );
    }
    assert_clean(&mut browser, &app).await;

    // A query and its Authorization header, as GraphiQL stores them (written
    // from another page of this origin, so GraphiQL cannot overwrite them),
    // then the page again.
    let query = json!("query Me { me { email role } }");
    let headers = json!(json!({ "Authorization": format!("Bearer {token}") }).to_string());
    browser
        .navigate(&format!("{}/health/live", app.address))
        .await;
    browser
        .eval(&format!(
            "localStorage.setItem('graphiql:query', {query}); localStorage.setItem('graphiql:headers', {headers}); true"
        ))
        .await;
    browser.navigate(&page).await;
    browser
        .wait_for(
            "GraphiQL shows the stored query and headers",
            &format!("{VALUE}('query') === {query} && {VALUE}('headers') === {headers} && {VALUE}('result') !== null"),
            LIMIT,
        )
        .await;
    click_run(&mut browser).await;
    let result = browser
        .wait_for(
            "the query's result in the result pane",
            &format!(
                "({VALUE}('result') || '').includes('manager@alawael.local') && {VALUE}('result')"
            ),
            LIMIT,
        )
        .await;
    let result: Value = serde_json::from_str(result.as_str().unwrap()).expect("JSON result");
    assert_eq!(result["data"]["me"]["role"], "MANAGER", "{result}");

    // The settings dialog opens and closes; its scroll-lock <style> is let
    // in by the page's nonce (assert_clean finds no CSP violation).
    browser
        .eval("document.querySelector('[aria-label=\"Open settings dialog\"]').click(); true")
        .await;
    browser
        .wait_for(
            "the settings dialog opens with GraphiQL's scroll lock applied",
            "!!document.querySelector('[role=dialog]') && Array.from(document.querySelectorAll('style')).some(s => s.textContent.includes('with-scroll-bars-hidden') && !!s.sheet)",
            LIMIT,
        )
        .await;
    browser
        .eval("document.querySelector('.graphiql-dialog-close').click(); true")
        .await;
    browser
        .wait_for(
            "the settings dialog closes",
            "!document.querySelector('[role=dialog]')",
            LIMIT,
        )
        .await;
    assert_clean(&mut browser, &app).await;

    // A subscription typed into the editor, run once GraphiQL has taken the
    // edit (it does so after a short debounce), and fed by a mutation.
    let subscription = json!("subscription { assetUpdated { kind asset { id name } } }");
    browser
        .eval(&format!(
            "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue({subscription}); true"
        ))
        .await;
    browser
        .wait_for(
            "GraphiQL takes the edited operation",
            &format!(
                "(function () {{ var s = JSON.parse(localStorage.getItem('graphiql:tabState') || 'null'); var t = s && s.tabs[s.activeTabIndex]; return !!t && t.query === {subscription} && !t.operationName; }})()"
            ),
            LIMIT,
        )
        .await;
    let listening = app.state.bus.receivers();
    click_run(&mut browser).await;
    // The page's connection and its subscription both listen on the bus.
    let deadline = Instant::now() + LIMIT;
    while app.state.bus.receivers() < listening + 2 {
        assert!(
            Instant::now() < deadline,
            "the page's subscription did not start; page errors: {:#?}",
            browser.errors()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = app
        .create_asset(&token, "Standing frame from GraphiQL", None)
        .await;
    let event = browser
        .wait_for(
            "the subscription's event in the result pane",
            &format!("({VALUE}('result') || '').includes('Standing frame from GraphiQL') && {VALUE}('result')"),
            LIMIT,
        )
        .await;
    let event: Value = serde_json::from_str(event.as_str().unwrap()).expect("JSON event");
    assert_eq!(event["data"]["assetUpdated"]["kind"], "CREATED", "{event}");
    assert_eq!(event["data"]["assetUpdated"]["asset"]["id"], id.as_str());

    let sockets: Vec<String> = browser
        .events_named("Network.webSocketCreated")
        .iter()
        .map(|p| p["url"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        sockets,
        [format!("ws://127.0.0.1:{}/graphql/ws", app.port)],
        "one WebSocket, to this server"
    );
    assert_clean(&mut browser, &app).await;
    browser.close().await;
}
