//! Does what the `x-probe` request header says, so tests can drive each SDK path.

use meshgate_sdk::prelude::*;
use meshgate_sdk::shared;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Upstream for `x-probe: call`.
    auth: String,
}

struct Probe {
    auth: String,
}

impl Plugin for Probe {
    type Config = Config;

    fn configure(config: Config) -> Result<Self> {
        Ok(Probe { auth: config.auth })
    }

    fn on_request(&self, req: &mut Request) -> Result<Decision> {
        let count = shared::increment("probe:requests", 1)?;
        req.set_header("x-count", &count.to_string())?;
        req.set_header("x-path", req.path().to_string().as_str())?;
        req.set_header("x-query-count", &req.query_params().len().to_string())?;
        if let Some(ip) = req.client_ip() {
            req.set_header("x-client-ip", &ip.to_string())?;
        }
        if let Some(bin) = req.header("x-bin") {
            req.set_header("x-bin-chars", &bin.chars().count().to_string())?;
        }
        req.set_var("method", req.method().to_string());
        match req.header("x-probe").as_deref() {
            Some("fail") => meshgate_sdk::bail!("probe failure on {}", req.path()),
            Some("redirect") => Ok(Decision::redirect("/login")),
            Some("body") | Some("fail-body") => Ok(Decision::ReadBody),
            Some("call") => {
                let user = req.header("x-user").unwrap_or_default();
                let call = HttpCall::get(self.auth.clone(), "/check").header("x-user", user);
                req.call(call, |req, result| match result {
                    Ok(resp) if resp.status == 200 => {
                        let body = String::from_utf8_lossy(&resp.body).into_owned();
                        req.set_header("x-auth", &body)?;
                        Ok(Decision::Continue)
                    }
                    Ok(resp) => Ok(Reply::json(403, &json!({ "status": resp.status })).into()),
                    Err(e) => Ok(Reply::json(502, &json!({ "error": e.to_string() })).into()),
                })
            }
            _ => Ok(Decision::Continue),
        }
    }

    fn on_request_body(&self, req: &mut Request, body: &[u8]) -> Result<Decision> {
        if req.header("x-probe").as_deref() == Some("fail-body") {
            meshgate_sdk::bail!("probe body failure after {} bytes", body.len());
        }
        let upper = String::from_utf8_lossy(body).to_uppercase();
        req.set_body(upper.as_bytes())?;
        req.set_header("x-body-len", &body.len().to_string())?;
        Ok(Decision::Continue)
    }

    fn on_response(&self, resp: &mut Response) -> Result<Decision> {
        if let Some(m) = resp.var("method").map(str::to_string) {
            resp.set_header("x-method", &m)?;
        }
        if resp.request_header("x-probe").as_deref() == Some("resp-body") {
            return Ok(Decision::ReadBody);
        }
        Ok(Decision::Continue)
    }

    fn on_response_body(&self, resp: &mut Response, body: &[u8]) -> Result<Decision> {
        let replaced = meshgate_sdk::serde_json::to_vec(
            &json!({ "len": body.len(), "status": resp.status() }),
        )?;
        resp.set_body(&replaced)?;
        resp.set_status(203)?;
        Ok(Decision::Continue)
    }
}

meshgate_sdk::plugin!(Probe);
