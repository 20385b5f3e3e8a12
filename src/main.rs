use std::process::ExitCode;

// HPACK fields, timeline events, the report model and its JSON all allocate: with glibc's
// malloc/free this was about a third of `analyze` on the bench capture (bench/run.sh, perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (include/mimalloc.h); the Rust bindings
/// name no constant for it.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// Its default in mimalloc v3 (src/options.c): milliseconds.
const PURGE_DELAY_DEFAULT: std::os::raw::c_long = 1000;

fn main() -> ExitCode {
    // Memory freed is given back to the OS at once rather than a second later (see Cargo.toml).
    // Only when the option reads as the v3 default: another mimalloc may number options otherwise.
    // SAFETY: mi_option_get and mi_option_set read and store an integer in mimalloc's option
    // table; they take no pointers, and no other thread runs yet.
    #[allow(unsafe_code)]
    unsafe {
        if libmimalloc_sys::mi_option_get(PURGE_DELAY) == PURGE_DELAY_DEFAULT {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
        }
    }
    h2keepalive::main_with_args(std::env::args_os())
}
