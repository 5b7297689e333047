//! The WASI preview1 functions SDK-built modules import, written by hand: environment
//! (the plugin's vm env), clocks, randomness, stdout/stderr to the log, `proc_exit`
//! ending the current plugin call, and stubs answering ENOSYS/EBADF for the rest, under
//! both `wasi_snapshot_preview1` and the older `wasi_unstable`.

use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::{Caller, FuncType, Linker, Val, ValType};

use super::{read, write, write_u32, write_u64, Names};
use crate::wasm::abi::errno;
use crate::wasm::state::HostState;

/// Message of the error `proc_exit` raises to unwind the guest.
pub const PROC_EXIT: &str = "plugin called proc_exit";

fn e(r: Result<(), i32>) -> i32 {
    match r {
        Ok(()) => errno::SUCCESS,
        Err(_) => errno::FAULT,
    }
}

pub fn add(l: &mut Linker<HostState>, n: &mut Names, m: &str) -> wasmtime::Result<()> {
    let mut def = |name: &str| {
        n.insert((m.to_string(), name.to_string()));
    };
    def("environ_sizes_get");
    l.func_wrap(
        m,
        "environ_sizes_get",
        |mut c: Caller<'_, HostState>, count: i32, size: i32| -> i32 {
            let env = &c.data().plugin.env;
            let total: usize = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
            let n = env.len() as u32;
            e(write_u32(&mut c, count, n).and_then(|_| write_u32(&mut c, size, total as u32)))
        },
    )?;
    def("environ_get");
    l.func_wrap(
        m,
        "environ_get",
        |mut c: Caller<'_, HostState>, ptrs: i32, buf: i32| -> i32 {
            let env = c.data().plugin.env.clone();
            let mut at = buf as u32;
            for (i, (k, v)) in env.iter().enumerate() {
                let entry = format!("{k}={v}\0");
                let r = write_u32(&mut c, ptrs.wrapping_add(4 * i as i32), at)
                    .and_then(|_| write(&mut c, at as i32, entry.as_bytes()));
                if r.is_err() {
                    return errno::FAULT;
                }
                at = at.wrapping_add(entry.len() as u32);
            }
            errno::SUCCESS
        },
    )?;
    def("args_sizes_get");
    l.func_wrap(
        m,
        "args_sizes_get",
        |mut c: Caller<'_, HostState>, count: i32, size: i32| -> i32 {
            e(write_u32(&mut c, count, 0).and_then(|_| write_u32(&mut c, size, 0)))
        },
    )?;
    def("args_get");
    l.func_wrap(
        m,
        "args_get",
        |_: Caller<'_, HostState>, _: i32, _: i32| -> i32 { errno::SUCCESS },
    )?;
    def("clock_time_get");
    l.func_wrap(
        m,
        "clock_time_get",
        |mut c: Caller<'_, HostState>, _clock: i32, _precision: i64, out: i32| -> i32 {
            // Realtime for every clock id: monotonic readers only compare differences.
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            e(write_u64(&mut c, out, now))
        },
    )?;
    def("clock_res_get");
    l.func_wrap(
        m,
        "clock_res_get",
        |mut c: Caller<'_, HostState>, _clock: i32, out: i32| -> i32 {
            e(write_u64(&mut c, out, 1))
        },
    )?;
    def("random_get");
    l.func_wrap(
        m,
        "random_get",
        |mut c: Caller<'_, HostState>, buf: i32, len: i32| -> i32 {
            let len = len as u32 as usize;
            if len > 1 << 20 {
                return errno::INVAL;
            }
            let mut bytes = vec![0u8; len];
            if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err()
            {
                return errno::NOSYS;
            }
            e(write(&mut c, buf, &bytes))
        },
    )?;
    def("fd_write");
    l.func_wrap(m, "fd_write", |mut c: Caller<'_, HostState>, fd: i32, iovs: i32, iovs_len: i32, written: i32| -> i32 {
        if fd != 1 && fd != 2 {
            return errno::BADF;
        }
        let mut text = Vec::new();
        for i in 0..(iovs_len as u32).min(1024) {
            let Ok(iov) = read(&mut c, iovs.wrapping_add(8 * i as i32), 8) else { return errno::FAULT };
            let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
            let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
            match read(&mut c, ptr, len) {
                Ok(b) => text.extend_from_slice(&b),
                Err(_) => return errno::FAULT,
            }
        }
        let plugin = c.data().plugin.name.as_str();
        let msg = String::from_utf8_lossy(&text);
        let msg = msg.trim_end();
        if !msg.is_empty() {
            if fd == 1 {
                tracing::info!(target: "meshgate::wasm::plugin", plugin, stream = "stdout", "{msg}");
            } else {
                tracing::warn!(target: "meshgate::wasm::plugin", plugin, stream = "stderr", "{msg}");
            }
        }
        e(write_u32(&mut c, written, text.len() as u32))
    })?;
    def("fd_fdstat_get");
    l.func_wrap(
        m,
        "fd_fdstat_get",
        |mut c: Caller<'_, HostState>, fd: i32, out: i32| -> i32 {
            if !(0..=2).contains(&fd) {
                return errno::BADF;
            }
            // filetype character device, no flags, no rights beyond write for stdout/stderr.
            let mut stat = [0u8; 24];
            stat[0] = 2;
            stat[8..16].copy_from_slice(&(1u64 << 6).to_le_bytes());
            e(write(&mut c, out, &stat))
        },
    )?;
    def("proc_exit");
    l.func_wrap(
        m,
        "proc_exit",
        |mut c: Caller<'_, HostState>, code: i32| -> wasmtime::Result<()> {
            c.data_mut().exit_code = Some(code);
            Err(wasmtime::Error::msg(PROC_EXIT))
        },
    )?;
    def("sched_yield");
    l.func_wrap(m, "sched_yield", |_: Caller<'_, HostState>| -> i32 {
        errno::SUCCESS
    })?;
    // fd_prestat_get must say EBADF so wasi-libc's start-up stops looking for preopens.
    for (name, params, answer) in STUBS {
        def(name);
        let params = params
            .chars()
            .map(|p| if p == 'I' { ValType::I64 } else { ValType::I32 });
        let ty = FuncType::new(l.engine(), params, [ValType::I32]);
        let answer = *answer;
        l.func_new(m, name, ty, move |_, _, results: &mut [Val]| {
            results[0] = Val::I32(answer);
            Ok(())
        })?;
    }
    Ok(())
}

/// Every other preview1 function: parameters (`i` i32, `I` i64) and the errno it answers.
const STUBS: &[(&str, &str, i32)] = &[
    ("fd_advise", "iIIi", errno::NOSYS),
    ("fd_allocate", "iII", errno::NOSYS),
    ("fd_close", "i", errno::SUCCESS),
    ("fd_datasync", "i", errno::BADF),
    ("fd_fdstat_set_flags", "ii", errno::NOSYS),
    ("fd_fdstat_set_rights", "iII", errno::NOSYS),
    ("fd_filestat_get", "ii", errno::BADF),
    ("fd_filestat_set_size", "iI", errno::BADF),
    ("fd_filestat_set_times", "iIIi", errno::BADF),
    ("fd_pread", "iiiIi", errno::BADF),
    ("fd_prestat_get", "ii", errno::BADF),
    ("fd_prestat_dir_name", "iii", errno::BADF),
    ("fd_pwrite", "iiiIi", errno::BADF),
    ("fd_read", "iiii", errno::BADF),
    ("fd_readdir", "iiiIi", errno::BADF),
    ("fd_renumber", "ii", errno::BADF),
    ("fd_seek", "iIii", errno::BADF),
    ("fd_sync", "i", errno::BADF),
    ("fd_tell", "ii", errno::BADF),
    ("path_create_directory", "iii", errno::NOSYS),
    ("path_filestat_get", "iiiii", errno::NOSYS),
    ("path_filestat_set_times", "iiiiIIi", errno::NOSYS),
    ("path_link", "iiiiiii", errno::NOSYS),
    ("path_open", "iiiiiIIii", errno::NOSYS),
    ("path_readlink", "iiiiii", errno::NOSYS),
    ("path_remove_directory", "iii", errno::NOSYS),
    ("path_rename", "iiiiii", errno::NOSYS),
    ("path_symlink", "iiiii", errno::NOSYS),
    ("path_unlink_file", "iii", errno::NOSYS),
    ("poll_oneoff", "iiii", errno::NOSYS),
    ("proc_raise", "i", errno::NOSYS),
    ("sock_accept", "iii", errno::NOSYS),
    ("sock_recv", "iiiiii", errno::NOSYS),
    ("sock_send", "iiiii", errno::NOSYS),
    ("sock_shutdown", "ii", errno::NOSYS),
];
