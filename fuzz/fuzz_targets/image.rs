#![no_main]
// The body lives in the library (wgpu_forge::fuzzing::image) so that tests/fuzz_replay.rs runs it too.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wgpu_forge::fuzzing::image(data);
});
