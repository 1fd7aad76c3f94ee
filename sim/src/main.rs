fn main() {
    std::process::exit(pgmsim_sim::cli::main_entry())
}
