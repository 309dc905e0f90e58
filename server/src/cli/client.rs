//! A small blocking client for the admin API, used by the CLI.

use serde_json::Value;

/// One line for the user: what failed and, from the API, the code and field.
#[derive(Debug)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub struct Client {
    base: String,
    key: String,
    http: reqwest::blocking::Client,
}

impl Client {
    pub fn new(base: &str, key: String) -> Self {
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("an HTTP client with a timeout builds");
        Self {
            base: base.trim_end_matches('/').to_string(),
            key,
            http,
        }
    }

    /// Sends a request; `Ok(Value::Null)` for an empty success body.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, CliError> {
        let url = format!("{}{}", self.base, path);
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| CliError(format!("'{method}' is not an HTTP method")))?;
        let mut req = self.http.request(method, &url).bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().map_err(|e| {
            CliError(format!(
                "cannot reach the server at {}: {} (is `convene serve` running? set --server or CONVENE_URL)",
                self.base,
                std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string())
            ))
        })?;
        let status = resp.status();
        let text = resp
            .text()
            .map_err(|e| CliError(format!("cannot read the response: {e}")))?;
        if !status.is_success() {
            return Err(CliError(describe_error(status.as_u16(), &text)));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .map_err(|e| CliError(format!("the server sent invalid JSON: {e}")))
    }
}

fn describe_error(status: u16, body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    match err {
        Some(e) => {
            let code = e["code"].as_str().unwrap_or("Error");
            let msg = e["message"].as_str().unwrap_or("");
            match e["target"].as_str() {
                Some(t) => format!("{code}: {msg} (field: {t})"),
                None => format!("{code}: {msg}"),
            }
        }
        None => format!("the server answered HTTP {status}"),
    }
}
