//! `cfg(fer_arm_dsp)` on Arm targets with the DSP extension (`SMLAD`, `SXTB16`), for
//! `kernels::cortex_m`. Rust does not expose Arm's `dsp` target feature to `cfg` on
//! stable, so the target name decides: Armv7E-M (Cortex-M4/M7) always has it.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(fer_arm_dsp)");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv7em-") {
        println!("cargo::rustc-cfg=fer_arm_dsp");
    }
}
