//! Wire formats shared by host calls: the serialized header-map (pairs) format and
//! NUL-joined property paths.

/// Serializes pairs the way Envoy does: u32 count, then (u32 key len, u32 value len) per
/// pair, then each `key\0value\0`. All integers little-endian.
pub fn serialize_pairs<'a, I>(pairs: I) -> Vec<u8>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])> + Clone,
{
    serialize_pairs_with(|| pairs.clone().into_iter())
}

/// `serialize_pairs` over an iterator that can be made twice (header maps' iterators
/// are not `Clone`).
pub fn serialize_pairs_with<'a, F, I>(pairs: F) -> Vec<u8>
where
    F: Fn() -> I,
    I: Iterator<Item = (&'a [u8], &'a [u8])>,
{
    let mut count = 0usize;
    let mut data_len = 0usize;
    for (k, v) in pairs() {
        count += 1;
        data_len += k.len() + v.len() + 2;
    }
    let mut out = Vec::with_capacity(4 + count * 8 + data_len);
    out.extend_from_slice(&(count as u32).to_le_bytes());
    for (k, v) in pairs() {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs() {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

/// Parses the pairs format. `None` when the data is truncated or lengths overflow.
pub fn deserialize_pairs(data: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    if data.is_empty() {
        return Some(Vec::new());
    }
    let count = read_u32(data, 0)? as usize;
    // Each pair needs at least 8 bytes of sizes and 2 NULs: reject absurd counts early.
    if count > data.len() / 10 + 1 {
        return None;
    }
    let mut sizes = Vec::with_capacity(count);
    let mut pos = 4usize;
    for _ in 0..count {
        let k = read_u32(data, pos)? as usize;
        let v = read_u32(data, pos + 4)? as usize;
        sizes.push((k, v));
        pos += 8;
    }
    let mut out = Vec::with_capacity(count);
    for (k, v) in sizes {
        let key = data.get(pos..pos.checked_add(k)?)?;
        pos = pos.checked_add(k)?.checked_add(1)?;
        let value = data.get(pos..pos.checked_add(v)?)?;
        pos = pos.checked_add(v)?.checked_add(1)?;
        if pos > data.len() {
            return None;
        }
        out.push((key, value));
    }
    Some(out)
}

/// A header map in the pairs format, after the given pseudo-headers.
pub fn serialize_headers(pseudo: &[(&[u8], &[u8])], headers: &http::HeaderMap) -> Vec<u8> {
    serialize_pairs_with(|| {
        pseudo.iter().copied().chain(
            headers
                .iter()
                .map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes())),
        )
    })
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Splits a property path (`request\0headers\0x-id`) into segments. A trailing NUL
/// (some SDKs send one) is ignored.
pub fn split_path(path: &[u8]) -> Vec<&[u8]> {
    let path = path.strip_suffix(b"\0").unwrap_or(path);
    path.split(|b| *b == 0).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_with_nul_after_every_key_and_value() {
        let pairs: Vec<(&[u8], &[u8])> = vec![(b":path", b"/x"), (b"k", b"")];
        let bytes = serialize_pairs(pairs.iter().copied());
        assert_eq!(&bytes[..4], &2u32.to_le_bytes());
        assert_eq!(&bytes[bytes.len() - 6..], b"/x\0k\0\0");
        assert_eq!(deserialize_pairs(&bytes).unwrap(), pairs);
    }

    #[test]
    fn truncated_pairs_are_rejected() {
        let bytes = serialize_pairs([(&b"key"[..], &b"value"[..])]);
        for cut in 1..bytes.len() {
            assert!(deserialize_pairs(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        assert!(deserialize_pairs(&u32::MAX.to_le_bytes()).is_none());
    }

    #[test]
    fn paths_split_on_nul() {
        assert_eq!(split_path(b"request\0path"), vec![&b"request"[..], b"path"]);
        assert_eq!(split_path(b"plugin_name\0"), vec![&b"plugin_name"[..]]);
    }
}
