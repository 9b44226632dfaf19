fn main() -> std::process::ExitCode {
    mab::cli::main()
}
