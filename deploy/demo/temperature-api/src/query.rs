//! Reads `?from=…&to=…&temperature=…` into a conversion request, with errors that say
//! which parameter is wrong.

use temperature_service::ConvertRequest;

/// An example the error messages point at.
pub const EXAMPLE: &str = "/?from=Celsius&to=Kelvin&temperature=150";

/// Why the query cannot become a conversion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("missing query parameter{} {}; expected {EXAMPLE}", if .0.len() > 1 { "s" } else { "" }, .0.join(", "))]
    Missing(Vec<&'static str>),
    #[error("query parameter '{0}' is given more than once")]
    Repeated(&'static str),
    #[error("query parameter 'temperature' must be a number, got '{0}'")]
    NotANumber(String),
}

/// Parses the raw query string (without `?`). Units are passed on unchecked: the
/// service owns the list of units and says what is wrong with one.
pub fn parse(query: Option<&str>) -> Result<ConvertRequest, QueryError> {
    let mut from = None;
    let mut to = None;
    let mut temperature = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let (name, slot) = match key.as_ref() {
            "from" => ("from", &mut from),
            "to" => ("to", &mut to),
            "temperature" => ("temperature", &mut temperature),
            _ => continue,
        };
        if slot.is_some() {
            return Err(QueryError::Repeated(name));
        }
        // An empty value is as good as none.
        if !value.trim().is_empty() {
            *slot = Some(value.into_owned());
        }
    }
    let missing: Vec<&'static str> = [("from", &from), ("to", &to), ("temperature", &temperature)]
        .into_iter()
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| name)
        .collect();
    match (from, to, temperature) {
        (Some(from), Some(to), Some(temperature)) => Ok(ConvertRequest {
            value: parse_temperature(&temperature)?,
            from,
            to,
        }),
        _ => Err(QueryError::Missing(missing)),
    }
}

fn parse_temperature(raw: &str) -> Result<f64, QueryError> {
    match raw.trim().parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(QueryError::NotANumber(raw.to_string())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_parameters_percent_decoded() {
        let request = parse(Some("to=Kelvin&temperature=-1.5e1&from=%43elsius&x=1")).unwrap();
        assert_eq!(request.from, "Celsius");
        assert_eq!(request.to, "Kelvin");
        assert_eq!(request.value, -15.0);
    }

    #[test]
    fn names_every_missing_parameter() {
        assert_eq!(
            parse(Some("from=Celsius&to=")).unwrap_err().to_string(),
            format!("missing query parameters to, temperature; expected {EXAMPLE}")
        );
        assert_eq!(
            parse(None).unwrap_err(),
            QueryError::Missing(vec!["from", "to", "temperature"])
        );
    }

    #[test]
    fn rejects_non_numbers_and_repeats() {
        for bad in ["abc", "NaN", "inf", "1,5"] {
            let query = format!("from=Celsius&to=Kelvin&temperature={bad}");
            assert_eq!(parse(Some(&query)), Err(QueryError::NotANumber(bad.into())));
        }
        assert_eq!(
            parse(Some("from=Celsius&from=Kelvin&to=Kelvin&temperature=1")),
            Err(QueryError::Repeated("from"))
        );
    }
}
