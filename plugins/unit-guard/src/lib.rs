//! Rejects a temperature conversion whose `from` or `to` unit the backend does not
//! know, with `400 {"error":"unsupported unit 'X'"}`, before it reaches the upstream.

use meshgate_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Accepted units (compared case-insensitively, as temperature-service does).
    units: Vec<String>,
    /// Query parameters that name a unit.
    params: Vec<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            units: vec!["Celsius".into(), "Fahrenheit".into(), "Kelvin".into()],
            params: vec!["from".into(), "to".into()],
        }
    }
}

struct UnitGuard {
    units: Vec<String>,
    params: Vec<String>,
}

impl Plugin for UnitGuard {
    type Config = Config;

    fn configure(config: Config) -> Result<Self> {
        if config.units.is_empty() {
            meshgate_sdk::bail!("units: at least one unit is needed, or every request is rejected");
        }
        Ok(UnitGuard {
            units: config.units.iter().map(|u| u.to_lowercase()).collect(),
            params: config.params,
        })
    }

    fn on_request(&self, req: &mut Request) -> Result<Decision> {
        for param in &self.params {
            // A missing parameter is the backend's to report; only wrong units stop here.
            let Some(unit) = req.query(param) else {
                continue;
            };
            if !self.units.contains(&unit.to_lowercase()) {
                meshgate_sdk::log::debug!("rejecting {param}={unit}");
                let error = format!("unsupported unit '{unit}'");
                return Ok(Reply::json(400, &json!({ "error": error })).into());
            }
        }
        Ok(Decision::Continue)
    }
}

meshgate_sdk::plugin!(UnitGuard);
