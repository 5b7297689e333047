//! Host functions a proxy-wasm module imports (`env.proxy_*` and WASI preview1), with
//! the guest-memory helpers they share. Every pointer and size from the guest is an
//! untrusted u32: reads and writes are bounds-checked and answer
//! INVALID_MEMORY_ACCESS instead of trapping the host.

mod http;
mod misc;
mod props;
mod shared;
mod wasi;

pub use wasi::PROC_EXIT;

use std::collections::HashSet;

use wasmtime::{Caller, IntoFunc, Linker};

use super::abi::status;
use super::state::HostState;

pub type Names = HashSet<(String, String)>;

pub fn add_to_linker(linker: &mut Linker<HostState>, names: &mut Names) -> wasmtime::Result<()> {
    http::add(linker, names)?;
    props::add(linker, names)?;
    shared::add(linker, names)?;
    misc::add(linker, names)?;
    wasi::add(linker, names, "wasi_snapshot_preview1")?;
    wasi::add(linker, names, "wasi_unstable")?;
    Ok(())
}

/// Defines `module.name` and remembers it so unknown imports can be told apart.
fn def<Params, Args>(
    linker: &mut Linker<HostState>,
    names: &mut Names,
    module: &str,
    name: &str,
    f: impl IntoFunc<HostState, Params, Args>,
) -> wasmtime::Result<()> {
    names.insert((module.to_string(), name.to_string()));
    linker.func_wrap(module, name, f)?;
    Ok(())
}

/// A guest call failed its memory access: answer with this status.
pub type Status = i32;

/// Copies `len` bytes at `ptr` out of guest memory.
pub fn read(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Result<Vec<u8>, Status> {
    let Some(memory) = caller.data().memory else {
        return Err(status::INTERNAL_FAILURE);
    };
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    let data = memory.data(&caller);
    let end = ptr.checked_add(len).ok_or(status::INVALID_MEMORY_ACCESS)?;
    data.get(ptr..end)
        .map(<[u8]>::to_vec)
        .ok_or(status::INVALID_MEMORY_ACCESS)
}

/// Reads a UTF-8 string (lossily: names and keys only).
pub fn read_string(
    caller: &mut Caller<'_, HostState>,
    ptr: i32,
    len: i32,
) -> Result<String, Status> {
    let bytes = read(caller, ptr, len)?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

pub fn write(caller: &mut Caller<'_, HostState>, ptr: i32, bytes: &[u8]) -> Result<(), Status> {
    let Some(memory) = caller.data().memory else {
        return Err(status::INTERNAL_FAILURE);
    };
    let ptr = ptr as u32 as usize;
    let end = ptr
        .checked_add(bytes.len())
        .ok_or(status::INVALID_MEMORY_ACCESS)?;
    let data = memory.data_mut(caller);
    data.get_mut(ptr..end)
        .ok_or(status::INVALID_MEMORY_ACCESS)?
        .copy_from_slice(bytes);
    Ok(())
}

pub fn write_u32(caller: &mut Caller<'_, HostState>, ptr: i32, v: u32) -> Result<(), Status> {
    write(caller, ptr, &v.to_le_bytes())
}

pub fn write_u64(caller: &mut Caller<'_, HostState>, ptr: i32, v: u64) -> Result<(), Status> {
    write(caller, ptr, &v.to_le_bytes())
}

/// Hands `bytes` to the guest: allocates inside the guest (even for 0 bytes, which
/// some SDKs rely on), copies, and stores the pointer and size at `ptr_out`/`len_out`.
/// `Err` is a trap from the guest's allocator; `Ok(status)` otherwise.
pub fn give(
    caller: &mut Caller<'_, HostState>,
    bytes: &[u8],
    ptr_out: i32,
    len_out: i32,
) -> wasmtime::Result<Status> {
    let Some(alloc) = caller.data().alloc.clone() else {
        return Ok(status::INTERNAL_FAILURE);
    };
    let Ok(len) = i32::try_from(bytes.len()) else {
        return Ok(status::INTERNAL_FAILURE);
    };
    let ptr = alloc.call(&mut *caller, len)?;
    if ptr == 0 && len > 0 {
        return Ok(status::INTERNAL_FAILURE);
    }
    let result = write(caller, ptr, bytes)
        .and_then(|_| write_u32(caller, ptr_out, ptr as u32))
        .and_then(|_| write_u32(caller, len_out, len as u32));
    Ok(match result {
        Ok(()) => status::OK,
        Err(s) => s,
    })
}

/// `Result<i32, Status>` → the status the guest sees.
fn flat(r: Result<Status, Status>) -> Status {
    r.unwrap_or_else(|s| s)
}
