//! The `roprof` binary.
fn main() {
    eprintln!("roprof: not yet wired");
    std::process::exit(2);
}
