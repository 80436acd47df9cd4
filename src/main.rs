fn main() -> std::process::ExitCode {
    qunfa::cli::main()
}
