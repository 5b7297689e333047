// mimalloc: a request through the proxy makes a few dozen short-lived allocations
// (header maps, bodies, futures); mimalloc's per-thread free lists serve them in fewer
// instructions than glibc's malloc and keep worker threads off each other's arenas.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    meshgate::cli::main()
}
