//! Headless Chromium driven over the Chrome DevTools Protocol: a fresh
//! profile per browser, one page attached in flat session mode, calls with
//! time-outs, and every protocol event kept for the test to inspect.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const CHROMIUM: &str = "/usr/bin/chromium";
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Browser {
    child: Child,
    profile: PathBuf,
    socket: Socket,
    session: String,
    next_id: u64,
    /// Every event received so far (`{"method": ..., "params": ...}`).
    pub events: Vec<Value>,
}

impl Browser {
    /// Starts Chromium and opens one blank page with the Page, Runtime, Log
    /// and Network domains on; `on_new_document` runs before any page script.
    pub async fn launch(on_new_document: &str) -> Browser {
        assert!(
            std::path::Path::new(CHROMIUM).exists(),
            "Chromium is not installed ({CHROMIUM} is missing): run scripts/test, which installs it"
        );
        let profile =
            std::env::temp_dir().join(format!("alawael-chromium-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&profile).expect("profile directory");
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group, so all its processes can be ended at once.
            .process_group(0)
            .spawn()
            .expect("Chromium starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (found, mut endpoint) = tokio::sync::mpsc::unbounded_channel();
        // Reads stderr to its end (so Chromium never blocks on it) and reports
        // the DevTools endpoint, or everything it printed if there is none.
        std::thread::spawn(move || {
            let mut printed = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = found.send(Ok(url.trim().to_string()));
                } else if printed.len() < 8_000 {
                    printed.push_str(&line);
                    printed.push('\n');
                }
            }
            let _ = found.send(Err(printed));
        });
        let url = match tokio::time::timeout(CALL_TIMEOUT, endpoint.recv()).await {
            Ok(Some(Ok(url))) => url,
            Ok(Some(Err(printed))) => {
                panic!("Chromium exited without a DevTools endpoint:\n{printed}")
            }
            Ok(None) | Err(_) => {
                panic!("Chromium printed no DevTools endpoint in {CALL_TIMEOUT:?}")
            }
        };
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("the DevTools WebSocket connects");
        let mut browser = Browser {
            child,
            profile,
            socket,
            session: String::new(),
            next_id: 0,
            events: Vec::new(),
        };
        let target = browser
            .send(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let attached = browser
            .send(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await;
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        for domain in ["Page", "Runtime", "Log", "Network"] {
            browser.call(&format!("{domain}.enable"), json!({})).await;
        }
        browser
            .call(
                "Page.addScriptToEvaluateOnNewDocument",
                json!({ "source": on_new_document }),
            )
            .await;
        browser
    }

    /// One command to the browser (`session` None) or a page session; the
    /// events that arrive meanwhile are kept.
    async fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::Text(command.to_string().into()))
            .await
            .expect("a DevTools command is sent");
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let value = self.receive(deadline, method).await;
            if value["id"] == id {
                assert!(value["error"].is_null(), "{method} failed: {value}");
                return value["result"].clone();
            }
        }
    }

    /// The next message from Chromium (kept in `events` when it is one).
    async fn receive(&mut self, deadline: Instant, waiting_for: &str) -> Value {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = tokio::time::timeout(left, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("{waiting_for}: nothing from Chromium in time"));
            let text = match message {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(_)) => continue,
                Some(Err(error)) => {
                    panic!("{waiting_for}: the DevTools connection failed: {error}")
                }
                None => panic!("{waiting_for}: Chromium closed the DevTools connection"),
            };
            let value: Value = serde_json::from_str(text.as_str()).expect("DevTools sends JSON");
            if value.get("method").is_some() {
                self.events.push(value.clone());
            }
            return value;
        }
    }

    /// One command to the page.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(Some(&session), method, params).await
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns
    /// its JSON value; an exception fails the test.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        assert!(
            result["exceptionDetails"].is_null(),
            "{expression} threw: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Polls `expression` until it is truthy (a non-empty, non-false,
    /// non-null value) and returns it; fails with `what` and the page's
    /// errors once `limit` has passed.
    pub async fn wait_for(&mut self, what: &str, expression: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.eval(expression).await;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {limit:?} (last value {value}); page errors: {:#?}",
                self.errors()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Loads `url` (again, if it is the current one) and waits for the
    /// page's load event.
    pub async fn navigate(&mut self, url: &str) {
        let before = self.events.len();
        let result = self.call("Page.navigate", json!({ "url": url })).await;
        assert!(result["errorText"].is_null(), "loading {url}: {result}");
        let deadline = Instant::now() + CALL_TIMEOUT;
        while !self.events[before..]
            .iter()
            .any(|e| e["method"] == "Page.loadEventFired")
        {
            self.receive(deadline, &format!("the load event of {url}"))
                .await;
        }
    }

    /// The parameters of every event named `method` so far.
    pub fn events_named(&self, method: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["method"] == method)
            .map(|e| &e["params"])
            .collect()
    }

    /// What went wrong in the page: uncaught exceptions, console errors,
    /// browser error messages, failed loads and HTTP error statuses.
    pub fn errors(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for event in &self.events {
            let p = &event["params"];
            match event["method"].as_str().unwrap_or_default() {
                "Runtime.exceptionThrown" => errors.push(format!(
                    "exception: {}",
                    p["exceptionDetails"]["exception"]["description"]
                )),
                "Runtime.consoleAPICalled" if p["type"] == "error" => {
                    errors.push(format!("console.error: {}", p["args"]))
                }
                "Log.entryAdded" if p["entry"]["level"] == "error" => {
                    errors.push(format!("log: {} {}", p["entry"]["text"], p["entry"]["url"]))
                }
                "Network.loadingFailed" => errors.push(format!(
                    "load failed: {} {} {}",
                    p["errorText"], p["blockedReason"], p["requestId"]
                )),
                "Network.responseReceived"
                    if p["response"]["status"].as_u64().is_some_and(|s| s >= 400) =>
                {
                    errors.push(format!(
                        "HTTP {}: {}",
                        p["response"]["status"], p["response"]["url"]
                    ))
                }
                _ => {}
            }
        }
        errors
    }

    /// Closes Chromium (all its processes) and removes its profile.
    pub async fn close(mut self) {
        self.next_id += 1;
        let command = json!({ "id": self.next_id, "method": "Browser.close" });
        let _ = self
            .socket
            .send(Message::Text(command.to_string().into()))
            .await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Browser {
    /// Ends Chromium's process group (the browser and its helpers, which
    /// would otherwise go on writing to the profile), then removes the profile.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
