// glibc's allocator was 40% of the time of planning 1,000 images (bench/plan.sh).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    mab::cli::main()
}
