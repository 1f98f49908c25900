fn main() {
    let scope = roprof::trace::Scope {
        container_id: Some("a".repeat(64)),
        ..Default::default()
    };
    match roprof::trace::Tracer::start(&scope) {
        Ok(t) => println!("attached {}", t.attached()),
        Err(e) => {
            eprintln!("error: {e}");
            let mut s: &dyn std::error::Error = &e;
            while let Some(x) = s.source() {
                eprintln!("  cause: {x}");
                s = x;
            }
        }
    }
}
