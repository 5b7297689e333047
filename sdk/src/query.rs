//! Splitting a request path into path and decoded query parameters.

/// The path without its query string.
pub fn path_only(path_and_query: &str) -> &str {
    match path_and_query.find('?') {
        Some(i) => &path_and_query[..i],
        None => path_and_query,
    }
}

/// The raw query string (after `?`, without the fragment), or `""`.
pub fn raw_query(path_and_query: &str) -> &str {
    let q = path_and_query.split_once('?').map_or("", |(_, q)| q);
    q.split_once('#').map_or(q, |(q, _)| q)
}

/// Decoded `name=value` pairs in order (`+` is a space, `%XX` decoded; invalid UTF-8
/// decodes lossily).
pub fn params(path_and_query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(raw_query(path_and_query).as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The first value of `name`, decoded.
pub fn param(path_and_query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(raw_query(path_and_query).as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_parameters_in_order() {
        let p = "/convert?from=Celsius&to=Kelvin%20&note=a+b&from=x#frag";
        assert_eq!(path_only(p), "/convert");
        assert_eq!(raw_query(p), "from=Celsius&to=Kelvin%20&note=a+b&from=x");
        assert_eq!(param(p, "from").as_deref(), Some("Celsius"));
        assert_eq!(param(p, "to").as_deref(), Some("Kelvin "));
        assert_eq!(param(p, "note").as_deref(), Some("a b"));
        assert_eq!(param(p, "missing"), None);
        assert_eq!(params(p).len(), 4);
    }

    #[test]
    fn paths_without_query_have_no_params() {
        assert_eq!(path_only("/a/b"), "/a/b");
        assert!(params("/a/b").is_empty());
        assert_eq!(param("/?%ZZ=%FF", "%ZZ").as_deref(), Some("\u{fffd}"));
    }
}
