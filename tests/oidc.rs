//! Sign-in through a real OpenID provider: panva's certified `oidc-provider` (npm, in
//! tests/interop/oidc-provider; `scripts/test` installs it with `npm ci`), driven as a browser
//! would — the hub's login redirect, the provider's login and consent forms, the redirect back
//! to the hub's callback — against `vigil serve`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};

const CLIENT_SECRET: &str = "a client secret with spaces & symbols: %+/=";

fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/oidc-provider")
}

/// The provider, stopped (its stdin closed, then killed) when dropped.
struct OpenIdProvider {
    child: Child,
    issuer: String,
}

impl Drop for OpenIdProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_provider(redirect_uri: &str) -> OpenIdProvider {
    let dir = provider_dir();
    assert!(
        dir.join("node_modules/oidc-provider").is_dir(),
        "oidc-provider is not installed: run `npm ci` in {} (scripts/test does)",
        dir.display()
    );
    let mut child = Command::new("node")
        .arg("provider.mjs")
        .arg(redirect_uri)
        .arg(CLIENT_SECRET)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs (Node.js is needed for this test)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let issuer = line
        .trim()
        .strip_prefix("issuer=")
        .unwrap_or_else(|| panic!("the provider did not start: {line:?}"))
        .to_owned();
    OpenIdProvider { child, issuer }
}

/// A free loopback port for the hub: its callback URL must be registered at the provider
/// before the hub, which needs the provider's issuer, starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A browser: follows redirects by hand, keeps the provider's cookies, submits its forms.
struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
    hub: String,
}

impl Browser {
    fn new(hub: &str, ca_pem: &[u8]) -> Browser {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .tls_certs_only([reqwest::Certificate::from_pem(ca_pem).unwrap()])
            .build()
            .unwrap();
        Browser {
            http,
            cookies: BTreeMap::new(),
            hub: hub.to_owned(),
        }
    }

    /// `GET {path}` of the hub's API as the holder of `token`, answered in JSON.
    async fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        self.http
            .get(format!("{}{path}", self.hub))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `GET /api/v1/oidc/login`: the provider's authorization URL.
    async fn begin(&mut self) -> String {
        let response = self
            .http
            .get(format!("{}/api/v1/oidc/login", self.hub))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        // The hub binds the sign-in to this browser with a cookie.
        self.keep_cookies(&response);
        location(&response)
    }

    /// From the authorization URL, signs in at the provider as `login` and consents; returns
    /// the URL of the hub's callback the provider redirects to.
    async fn through_provider(&mut self, start: &str, login: &str, password: &str) -> String {
        let mut url = start.to_owned();
        let mut form: Option<Vec<(String, String)>> = None;
        for _ in 0..12 {
            let request = match form.take() {
                Some(fields) => {
                    let mut encoded = reqwest::Url::parse("form:").unwrap();
                    encoded.query_pairs_mut().extend_pairs(&fields);
                    self.http
                        .post(&url)
                        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(encoded.query().unwrap_or("").to_owned())
                }
                None => self.http.get(&url),
            };
            let response = request
                .header(COOKIE, self.cookie_header())
                .send()
                .await
                .unwrap();
            self.keep_cookies(&response);
            let status = response.status();
            if status.is_redirection() {
                let next = response
                    .url()
                    .join(&location(&response))
                    .unwrap()
                    .to_string();
                if next.starts_with(&self.hub) {
                    return next;
                }
                url = next;
                continue;
            }
            let page = response.text().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{url}: {page}");
            let (action, mut fields) = parse_form(&page);
            if fields.iter().any(|(k, v)| k == "prompt" && v == "login") {
                fields.push(("login".into(), login.into()));
                fields.push(("password".into(), password.into()));
            }
            url = reqwest::Url::parse(&url)
                .unwrap()
                .join(&action)
                .unwrap()
                .to_string();
            form = Some(fields);
        }
        panic!("the provider never sent the browser back to the hub");
    }

    /// Follows the provider's redirect to the hub's callback.
    async fn callback(&self, url: &str) -> (StatusCode, serde_json::Value) {
        let response = self
            .http
            .get(url)
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    /// The whole sign-in of `login`: the hub's answer at its callback.
    async fn sign_in(&mut self, login: &str, password: &str) -> (StatusCode, serde_json::Value) {
        self.cookies.clear();
        let start = self.begin().await;
        let back = self.through_provider(&start, login, password).await;
        self.callback(&back).await
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for header in response.headers().get_all(SET_COOKIE) {
            let text = header.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            let expired = text
                .to_ascii_lowercase()
                .contains("expires=thu, 01 jan 1970");
            if value.is_empty() || expired {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("{} without a Location", response.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// The first form of a page: its action and hidden fields (the development pages are simple).
fn parse_form(page: &str) -> (String, Vec<(String, String)>) {
    let attribute = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(tag[start..end].replace("&amp;", "&"))
    };
    let form = &page[page.find("<form").expect("a form on the page")..];
    let action = attribute(&form[..form.find('>').unwrap()], "action").unwrap();
    let body = &form[..form.find("</form>").unwrap()];
    let fields = body
        .split("<input")
        .skip(1)
        .map(|input| &input[..input.find('>').unwrap()])
        .filter(|tag| tag.contains("type=\"hidden\""))
        .map(|tag| {
            (
                attribute(tag, "name").unwrap(),
                attribute(tag, "value").unwrap_or_default(),
            )
        })
        .collect();
    (action, fields)
}

fn add_user(data: &str, name: &str, role: &str) {
    let out = common::run(&[
        "user",
        "add",
        "--data-dir",
        data,
        "--name",
        name,
        "--role",
        role,
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_through_a_real_openid_provider() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    common::init(dir.path());
    add_user(data, "alice", "clinician");
    add_user(data, "sec.officer", "security_officer");

    let port = free_port();
    let hub = format!("https://localhost:{port}");
    let redirect_uri = format!("{hub}/api/v1/oidc/callback");
    let provider = start_provider(&redirect_uri);
    let listen = format!("127.0.0.1:{port}");
    let served = common::serve(
        dir.path(),
        &[
            ("VIGIL_HUB_HTTPS_LISTEN", &listen),
            ("VIGIL_OIDC_ISSUER", &provider.issuer),
            ("VIGIL_OIDC_CLIENT_ID", "vigil-hub"),
            ("VIGIL_OIDC_CLIENT_SECRET", CLIENT_SECRET),
            ("VIGIL_OIDC_REDIRECT_URI", &redirect_uri),
        ],
    );
    assert_eq!(served.https, hub);
    let ca = std::fs::read(dir.path().join("pki/ca.crt.pem")).unwrap();
    let mut browser = Browser::new(&hub, &ca);

    // The authorization request: code flow, PKCE S256, state and nonce.
    let start = reqwest::Url::parse(&browser.begin().await).unwrap();
    assert!(
        start
            .as_str()
            .starts_with(&format!("{}/auth?", provider.issuer))
    );
    let query: BTreeMap<_, _> = start.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["scope"], "openid profile email");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["redirect_uri"], redirect_uri);
    assert!(query["state"].len() >= 32 && query["nonce"].len() >= 32);

    // A clinician signs in: the same session as a password sign-in.
    let (status, session) = browser.sign_in("alice", "alice-password").await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_eq!(session["user"], "alice");
    assert_eq!(session["role"], "clinician");
    assert_eq!(session["token_type"], "Bearer");
    let token = session["token"].as_str().unwrap();
    let me = browser.get_json("/api/v1/me", token).await;
    assert_eq!(me["user"], "alice");
    assert_eq!(me["role"], "clinician");

    // A callback replayed: the state was used.
    browser.cookies.clear();
    let start = browser.begin().await;
    let back = browser
        .through_provider(&start, "alice", "alice-password")
        .await;
    assert_eq!(browser.callback(&back).await.0, StatusCode::CREATED);
    let (status, problem) = browser.callback(&back).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["type"], "urn:vigil:problem:oidc-unknown-state");

    // A state the hub never made: not this browser's sign-in either.
    let forged = back.replace("state=", "state=0");
    let (status, problem) = browser.callback(&forged).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["type"], "urn:vigil:problem:oidc-other-browser");

    // A callback URL taken to another browser (a stolen code, or login CSRF) is refused, and
    // the browser that began the sign-in can still finish it.
    browser.cookies.clear();
    let start = browser.begin().await;
    let back = browser
        .through_provider(&start, "alice", "alice-password")
        .await;
    let other = Browser::new(&hub, &ca);
    let (status, problem) = other.callback(&back).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["type"], "urn:vigil:problem:oidc-other-browser");
    assert_eq!(browser.callback(&back).await.0, StatusCode::CREATED);

    // An account of the provider's with no Vigil user: not created.
    let (status, problem) = browser.sign_in("stranger", "stranger-password").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["type"], "urn:vigil:problem:oidc-no-account");

    // A security officer without multi-factor authentication at the provider, then with it.
    let (status, problem) = browser.sign_in("sec-nomfa", "sec-nomfa-password").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(problem["type"], "urn:vigil:problem:oidc-mfa-required");
    let (status, session) = browser.sign_in("sec-mfa", "sec-mfa-password").await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_eq!(session["user"], "sec.officer");
    assert_eq!(session["role"], "security_officer");

    // The audit log, read by the security officer: the sign-ins through the provider and the
    // refusals. Sign-ins are audited by the hub's writer thread, a moment after the answer.
    let expected = [
        ("alice", "success", "oidc"),
        ("sec.officer", "success", "oidc"),
        ("unknown", "denied", "oidc: no Vigil user for this identity"),
        (
            "sec.officer",
            "denied",
            "oidc: privileged role without multi-factor authentication",
        ),
        (
            "unknown",
            "denied",
            "oidc: unknown, expired or already used sign-in state",
        ),
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let entries = browser
            .get_json(
                "/api/v1/audit/entries?limit=1000",
                session["token"].as_str().unwrap(),
            )
            .await;
        let entries = entries.as_array().unwrap();
        let logins: Vec<(String, String, String)> = entries
            .iter()
            .map(|e| &e["entry"])
            .filter(|e| e["action"] == "login")
            .map(|e| {
                (
                    e["resource"]["id"].as_str().unwrap().to_owned(),
                    e["outcome"].as_str().unwrap().to_owned(),
                    e["reason"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let has = |&(user, outcome, reason): &(&str, &str, &str)| {
            logins
                .iter()
                .any(|l| (l.0.as_str(), l.1.as_str(), l.2.as_str()) == (user, outcome, reason))
        };
        if expected.iter().all(has) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "missing {:?} in {logins:?}",
            expected.iter().filter(|e| !has(e)).collect::<Vec<_>>()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
