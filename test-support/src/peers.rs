//! The local peers `scripts/test.sh` starts — llmock, aimock, Arize Phoenix, the Python
//! reference — found through the variables it exports. A test whose peer is absent is
//! skipped (it says `SKIPPED` on stderr), unless the script's `LOOPOTEL_REQUIRE_*` variable
//! for that peer is `1`: then a missing peer fails the test. One rule, in one place.

use serde_json::Value;

use crate::json::http_get_json;

/// Whether `scripts/test.sh` requires the peer (`require_var` is `1`).
pub fn required(require_var: &str) -> bool {
    std::env::var(require_var).is_ok_and(|v| v == "1")
}

/// What to do when a peer is absent: panic when it is required, else say `SKIPPED` and
/// return `None`. `what` names the peer, `start` the command that starts it.
pub fn missing<T>(require_var: &str, what: &str, start: &str) -> Option<T> {
    assert!(
        !required(require_var),
        "{require_var}=1 but {what} is not available: run `{start}` (scripts/test.sh does)"
    );
    eprintln!("SKIPPED: {what} is not available (`{start}`, or run scripts/test.sh)");
    None
}

/// The value of `url_var`, or [`missing`] when it is unset.
pub fn peer_url(url_var: &str, require_var: &str, what: &str, start: &str) -> Option<String> {
    match std::env::var(url_var) {
        Ok(url) => Some(url),
        Err(_) => missing(require_var, &format!("{what} ({url_var})"), start),
    }
}

/// The llmock server's base URL (`LOOPOTEL_LLMOCK_URL`, no `/v1`).
pub fn llmock() -> Option<String> {
    peer_url(
        "LOOPOTEL_LLMOCK_URL",
        "LOOPOTEL_REQUIRE_LLMOCK",
        "llmock",
        "bash scripts/llmock.sh start",
    )
}

/// The aimock server's base URL (`LOOPOTEL_AIMOCK_URL`, no `/v1`).
pub fn aimock() -> Option<String> {
    peer_url(
        "LOOPOTEL_AIMOCK_URL",
        "LOOPOTEL_REQUIRE_AIMOCK",
        "aimock",
        "bash scripts/aimock.sh start",
    )
}

/// A running Arize Phoenix (started by `scripts/phoenix.sh start`).
#[derive(Debug, Clone)]
pub struct Phoenix {
    /// Base URL of its HTTP server (OTLP/HTTP at `/v1/traces`, REST API at `/v1/...`).
    pub url: String,
    /// Its OTLP/gRPC endpoint.
    pub grpc: String,
}

/// The Phoenix the test script started (`LOOPOTEL_PHOENIX_URL`, `LOOPOTEL_PHOENIX_GRPC`).
/// `None` (said on stderr) when absent, unless `LOOPOTEL_REQUIRE_PHOENIX=1`: then it panics.
pub fn phoenix() -> Option<Phoenix> {
    match (
        std::env::var("LOOPOTEL_PHOENIX_URL"),
        std::env::var("LOOPOTEL_PHOENIX_GRPC"),
    ) {
        (Ok(url), Ok(grpc)) => Some(Phoenix { url, grpc }),
        _ => missing(
            "LOOPOTEL_REQUIRE_PHOENIX",
            "Phoenix (LOOPOTEL_PHOENIX_URL, LOOPOTEL_PHOENIX_GRPC)",
            "bash scripts/phoenix.sh start",
        ),
    }
}

impl Phoenix {
    /// Every span of `project`, waiting (up to `timeout`) until at least `expected` arrived.
    pub fn spans(
        &self,
        project: &str,
        expected: usize,
        timeout: std::time::Duration,
    ) -> Vec<Value> {
        let start = std::time::Instant::now();
        loop {
            let mut all = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut url = format!("{}/v1/projects/{project}/spans?limit=1000", self.url);
                if let Some(c) = &cursor {
                    url.push_str(&format!("&cursor={c}"));
                }
                let Ok(page) = http_get_json(&url) else { break };
                all.extend(page["data"].as_array().cloned().unwrap_or_default());
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
            if all.len() >= expected || start.elapsed() > timeout {
                return all;
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }
}

/// A headless browser for page tests (`scripts/browser.sh setup`): Debian's Chromium and the
/// playwright-core package that drives it.
#[derive(Debug, Clone)]
pub struct Browser {
    /// The Chromium executable (`LOOPOTEL_CHROMIUM`).
    pub chromium: String,
    /// The `node_modules` directory holding playwright-core (`LOOPOTEL_PLAYWRIGHT_DIR`).
    pub playwright_dir: String,
}

/// The headless browser, if set up (`LOOPOTEL_REQUIRE_BROWSER=1` makes its absence fail).
pub fn browser() -> Option<Browser> {
    let chromium = peer_url(
        "LOOPOTEL_CHROMIUM",
        "LOOPOTEL_REQUIRE_BROWSER",
        "a headless Chromium",
        "bash scripts/browser.sh setup",
    )?;
    let playwright_dir = peer_url(
        "LOOPOTEL_PLAYWRIGHT_DIR",
        "LOOPOTEL_REQUIRE_BROWSER",
        "playwright-core",
        "bash scripts/browser.sh setup",
    )?;
    Some(Browser {
        chromium,
        playwright_dir,
    })
}
