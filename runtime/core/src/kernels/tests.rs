//! The conformance suite (`conformance.rs`) for every kernel implementation this CPU runs.

use super::{available, conformance};

#[test]
fn gemm_matches_the_reference() {
    available().into_iter().for_each(conformance::gemm);
}

#[test]
fn depthwise_matches_the_reference() {
    available().into_iter().for_each(conformance::depthwise);
}

#[test]
fn elementwise_ops_match_the_reference() {
    available().into_iter().for_each(conformance::elementwise);
}

#[test]
fn every_kernel_set_this_cpu_runs_is_tested() {
    let names: Vec<&str> = available().iter().map(|k| k.name()).collect();
    std::eprintln!("kernels under test: {names:?}");
    assert_eq!(names[0], "reference");
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        assert!(names.contains(&"avx2") && names.contains(&"avx2-u7"), "{names:?}");
    }
    #[cfg(target_arch = "aarch64")]
    {
        assert!(names.contains(&"neon"), "{names:?}");
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            assert!(names.contains(&"neon-dotprod"), "{names:?}");
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    assert!(names.contains(&"simd128"), "{names:?}");
}
