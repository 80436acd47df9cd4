fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    qunfa::cli::main()
}

/// glibc gives each thread that allocates under contention an arena of its
/// own, up to eight per core, and keeps what each arena grew to. Messages of
/// tens of KB built on the runtime's threads and freed on others made the
/// campaign benchmark's RSS grow with every message (89 MB peak for 20,000
/// recipients, 192 MB for 100,000); with one arena per core it stays flat
/// (45–55 MB for 20,000) at the same CPU per message. `MALLOC_ARENA_MAX`
/// still decides when it is set.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    use std::ffi::c_int;
    unsafe extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }
    const M_ARENA_MAX: c_int = -8;
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    // SAFETY: mallopt only sets a tunable; called before any thread starts.
    unsafe {
        mallopt(M_ARENA_MAX, c_int::try_from(cores).unwrap_or(c_int::MAX));
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
