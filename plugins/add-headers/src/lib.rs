//! Sets and removes headers on requests and responses, from config.

use std::collections::BTreeMap;

use meshgate_sdk::prelude::*;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Edits {
    /// Headers to set, replacing any value the message had.
    set: BTreeMap<String, String>,
    /// Headers to append (keeping existing values).
    add: BTreeMap<String, String>,
    /// Headers to remove.
    remove: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {
    request: Edits,
    response: Edits,
}

struct AddHeaders {
    request: Edits,
    response: Edits,
}

/// A header name the proxy can carry: a non-empty HTTP token, not a pseudo-header.
fn check_names(side: &str, edits: &Edits) -> Result<()> {
    let names = edits
        .set
        .keys()
        .chain(edits.add.keys())
        .chain(edits.remove.iter());
    for name in names {
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            meshgate_sdk::bail!("{side}: {name:?} is not a valid header name");
        }
    }
    for (name, value) in edits.set.iter().chain(edits.add.iter()) {
        if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
            meshgate_sdk::bail!("{side}: the value of {name:?} contains a line break or NUL");
        }
    }
    Ok(())
}

impl Plugin for AddHeaders {
    type Config = Config;

    fn configure(config: Config) -> Result<Self> {
        check_names("request", &config.request)?;
        check_names("response", &config.response)?;
        Ok(AddHeaders {
            request: config.request,
            response: config.response,
        })
    }

    fn on_request(&self, req: &mut Request) -> Result<Decision> {
        for name in &self.request.remove {
            req.remove_header(name)?;
        }
        for (name, value) in &self.request.set {
            req.set_header(name, value)?;
        }
        for (name, value) in &self.request.add {
            req.add_header(name, value)?;
        }
        Ok(Decision::Continue)
    }

    fn on_response(&self, resp: &mut Response) -> Result<Decision> {
        for name in &self.response.remove {
            resp.remove_header(name)?;
        }
        for (name, value) in &self.response.set {
            resp.set_header(name, value)?;
        }
        for (name, value) in &self.response.add {
            resp.add_header(name, value)?;
        }
        Ok(Decision::Continue)
    }
}

meshgate_sdk::plugin!(AddHeaders);
