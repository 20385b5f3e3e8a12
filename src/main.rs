use std::process::ExitCode;

fn main() -> ExitCode {
    h2keepalive::main_with_args(std::env::args_os())
}
