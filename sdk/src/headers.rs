//! Header reads and edits on one of the host's header maps, shared by the request and
//! response views. Values are read as bytes and decoded lossily: a non-UTF-8 header is
//! never a reason to fail.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

use crate::{Error, Result};

pub(crate) fn get(map: MapType, name: &str) -> Result<Option<String>> {
    let name = name.to_ascii_lowercase();
    hostcalls::get_map_value_bytes(map, &name)
        .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
        .map_err(|s| Error::host("get header", s))
}

pub(crate) fn all(map: MapType) -> Result<Vec<(String, String)>> {
    hostcalls::get_map_bytes(map)
        .map(|pairs| {
            pairs
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
                .collect()
        })
        .map_err(|s| Error::host("get headers", s))
}

pub(crate) fn set(map: MapType, name: &str, value: &str) -> Result<()> {
    let name = name.to_ascii_lowercase();
    hostcalls::set_map_value_bytes(map, &name, Some(value.as_bytes()))
        .map_err(|s| Error::host("set header", s))
}

pub(crate) fn add(map: MapType, name: &str, value: &str) -> Result<()> {
    let name = name.to_ascii_lowercase();
    hostcalls::add_map_value_bytes(map, &name, value.as_bytes())
        .map_err(|s| Error::host("add header", s))
}

pub(crate) fn remove(map: MapType, name: &str) -> Result<()> {
    let name = name.to_ascii_lowercase();
    hostcalls::remove_map_value(map, &name).map_err(|s| Error::host("remove header", s))
}

/// A property as a string (`source.address`, `request.id`, ...).
pub(crate) fn property(path: &[&str]) -> Result<Option<String>> {
    hostcalls::get_property(path.to_vec())
        .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
        .map_err(|s| Error::host("get property", s))
}
