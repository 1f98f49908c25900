fn main() {
    // Emits `bpf_target_arch` so the crate also type-checks on the host.
    aya_build::emit_bpf_target_arch_cfg().expect("emit bpf_target_arch cfg");
}
