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
    agent: ureq::Agent,
}

impl Client {
    pub fn new(base: &str, key: String) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout(std::time::Duration::from_secs(30))
            .build();
        Self {
            base: base.trim_end_matches('/').to_string(),
            key,
            agent,
        }
    }

    /// Sends a request; `Ok(Value::Null)` for an empty success body.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, CliError> {
        let url = format!("{}{}", self.base, path);
        let req = self
            .agent
            .request(method, &url)
            .set("Authorization", &format!("Bearer {}", self.key));
        let result = match body {
            Some(b) => req.send_json(b.clone()),
            None => req.call(),
        };
        match result {
            Ok(resp) => {
                let text = resp
                    .into_string()
                    .map_err(|e| CliError(format!("cannot read the response: {e}")))?;
                if text.trim().is_empty() {
                    return Ok(Value::Null);
                }
                serde_json::from_str(&text)
                    .map_err(|e| CliError(format!("the server sent invalid JSON: {e}")))
            }
            Err(ureq::Error::Status(status, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                Err(CliError(describe_error(status, &text)))
            }
            Err(ureq::Error::Transport(t)) => Err(CliError(format!(
                "cannot reach the server at {}: {} (is `convene serve` running? set --server or CONVENE_URL)",
                self.base,
                t.message().map(str::to_owned).unwrap_or_else(|| t.kind().to_string())
            ))),
        }
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
