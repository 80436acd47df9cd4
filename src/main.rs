/// mimalloc instead of the C library's allocator, for Rust and, through its
/// `override` feature, for the C code linked in (SQLite) too. The API's
/// pages, the tracking hits and a campaign's messages allocate and free many
/// small strings on the runtime's threads: with glibc's malloc that was a
/// fifth of a page's CPU; and what glibc's arenas grew to (what SQLite took
/// to start a task of a large list, messages built on one thread and freed
/// on another) stayed in RSS. `allocator::settle` makes mimalloc give memory
/// back as soon as it is free (docs/benchmarks.md, "the allocator and the
/// text part").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    allocator::settle();
    qunfa::cli::main()
}

mod allocator {
    use std::ffi::{c_int, c_long};

    unsafe extern "C" {
        fn mi_option_set(option: c_int, value: c_long);
        #[cfg(test)]
        fn mi_option_get(option: c_int) -> c_long;
    }

    // `mi_option_t` of mimalloc 3 (its mimalloc.h): the tests check both by
    // their defaults, which no other option of that version has.
    /// Commit an arena's memory when it is reserved (2: where the OS
    /// overcommits, which Linux does). Arenas reserved before `main` keep
    /// the default; the `no_thp` feature keeps them off huge pages.
    const ARENA_EAGER_COMMIT: c_int = 4;
    /// Milliseconds before freed memory goes back to the OS (1,000).
    const PURGE_DELAY: c_int = 15;

    /// Memory is committed as it is used and returned as soon as it is
    /// free: a campaign's peak RSS stays below 64 MB (with mimalloc's
    /// defaults 90 MB for 20,000 recipients; with glibc 65 MB, and 85 MB for
    /// 100,000), at no CPU cost the campaign benchmark can see.
    /// `MIMALLOC_ARENA_EAGER_COMMIT` and `MIMALLOC_PURGE_DELAY` still decide
    /// when they are set.
    pub fn settle() {
        for (option, variable) in [
            (ARENA_EAGER_COMMIT, "MIMALLOC_ARENA_EAGER_COMMIT"),
            (PURGE_DELAY, "MIMALLOC_PURGE_DELAY"),
        ] {
            if std::env::var_os(variable).is_none() {
                // SAFETY: mi_option_set only stores a tunable that mimalloc
                // reads when it next commits or purges memory.
                unsafe { mi_option_set(option, 0) };
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_options_are_the_ones_meant() {
            // SAFETY: reading a tunable.
            let get = |option| unsafe { mi_option_get(option) };
            assert_eq!(get(ARENA_EAGER_COMMIT), 2, "arena_eager_commit's default");
            assert_eq!(get(PURGE_DELAY), 1000, "purge_delay's default");
            settle();
            assert_eq!((get(ARENA_EAGER_COMMIT), get(PURGE_DELAY)), (0, 0));
        }
    }
}
