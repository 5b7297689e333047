//! Shared data (with CAS) and shared queues, scoped by the plugin's vm_id.

use bytes::Bytes;
use wasmtime::{Caller, Linker};

use super::{def, flat, give, read, read_string, write_u32, Names};
use crate::wasm::abi::status;
use crate::wasm::shared;
use crate::wasm::state::HostState;

pub fn add(l: &mut Linker<HostState>, n: &mut Names) -> wasmtime::Result<()> {
    def(
        l,
        n,
        "env",
        "proxy_get_shared_data",
        |mut c: Caller<'_, HostState>,
         kp: i32,
         kl: i32,
         rp: i32,
         rl: i32,
         cas_out: i32|
         -> wasmtime::Result<i32> {
            let key = match read_string(&mut c, kp, kl) {
                Ok(k) => k,
                Err(s) => return Ok(s),
            };
            let Some((value, cas)) = shared::get_data(&c.data().plugin.vm_id, &key) else {
                return Ok(status::NOT_FOUND);
            };
            let st = give(&mut c, &value, rp, rl)?;
            if st != status::OK {
                return Ok(st);
            }
            Ok(flat(write_u32(&mut c, cas_out, cas).map(|_| status::OK)))
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_set_shared_data",
        |mut c: Caller<'_, HostState>, kp: i32, kl: i32, vp: i32, vl: i32, cas: i32| -> i32 {
            let (key, value) = match (read_string(&mut c, kp, kl), read(&mut c, vp, vl)) {
                (Ok(k), Ok(v)) => (k, v),
                (Err(s), _) | (_, Err(s)) => return s,
            };
            shared::set_data(&c.data().plugin.vm_id, &key, Bytes::from(value), cas as u32)
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_register_shared_queue",
        |mut c: Caller<'_, HostState>, np: i32, nl: i32, token_out: i32| -> i32 {
            let name = match read_string(&mut c, np, nl) {
                Ok(k) => k,
                Err(s) => return s,
            };
            let plugin = c.data().plugin.clone();
            let token = shared::register_queue(&plugin.vm_id, &name, &plugin.events);
            flat(write_u32(&mut c, token_out, token).map(|_| status::OK))
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_resolve_shared_queue",
        |mut c: Caller<'_, HostState>, vp: i32, vl: i32, np: i32, nl: i32, token_out: i32| -> i32 {
            let (vm_id, name) = match (read_string(&mut c, vp, vl), read_string(&mut c, np, nl)) {
                (Ok(v), Ok(n)) => (v, n),
                (Err(s), _) | (_, Err(s)) => return s,
            };
            // An empty vm_id means the caller's own.
            let vm_id = if vm_id.is_empty() {
                c.data().plugin.vm_id.clone()
            } else {
                vm_id
            };
            match shared::resolve_queue(&vm_id, &name) {
                Some(token) => flat(write_u32(&mut c, token_out, token).map(|_| status::OK)),
                None => status::NOT_FOUND,
            }
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_enqueue_shared_queue",
        |mut c: Caller<'_, HostState>, token: i32, vp: i32, vl: i32| -> i32 {
            match read(&mut c, vp, vl) {
                Ok(v) => shared::enqueue(token as u32, Bytes::from(v)),
                Err(s) => s,
            }
        },
    )?;
    def(
        l,
        n,
        "env",
        "proxy_dequeue_shared_queue",
        |mut c: Caller<'_, HostState>, token: i32, rp: i32, rl: i32| -> wasmtime::Result<i32> {
            match shared::dequeue(token as u32) {
                Ok(v) => give(&mut c, &v, rp, rl),
                Err(s) => Ok(s),
            }
        },
    )?;
    Ok(())
}
