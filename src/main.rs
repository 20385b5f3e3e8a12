use std::process::ExitCode;

// HPACK fields, timeline events, the report model and its JSON all allocate: with glibc's
// malloc/free this was about a third of `analyze` on the bench capture (bench/run.sh, perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    h2keepalive::main_with_args(std::env::args_os())
}
