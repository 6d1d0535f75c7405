//! Memory bounds of the checkpoint reader, measured: a counting allocator records the peak heap
//! while hostile pickles and checkpoints are read. One test function, so nothing else in this
//! binary allocates while it measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use wgpu_forge::cli::convert::{convert_with, Options};
use wgpu_forge::models::mesorch::{expected_keys, MesorchConfig, Variant};
use wgpu_forge::weights::pickle::{self, Limits};
use wgpu_forge::weights::testkit::{f32_bytes, hostile_pickles, shared_storage_checkpoint, torch_zip, PickleBuf};
use wgpu_forge::weights::SaveDType;

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // Counted as a fresh allocation followed by a free: the old and new blocks may coexist.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            let now = LIVE.fetch_add(new, Ordering::Relaxed) + new;
            PEAK.fetch_max(now, Ordering::Relaxed);
            LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Run `f`; return its result and the peak heap it added over what was live before.
fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let r = f();
    (r, PEAK.load(Ordering::Relaxed) - base)
}

const MB: usize = 1 << 20;

#[test]
fn hostile_input_stays_within_the_byte_budget() {
    let dir = std::env::temp_dir().join(format!("forge-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dst = dir.join("out.safetensors");
    let mut report = Vec::new();
    for (name, pkl) in hostile_pickles() {
        // 1. The pickle alone, under its default budget and under a tight one: the real peak heap
        //    stays within the bytes the reader charges (the budget is honest), and it refuses.
        for lim in [Limits::for_file(pkl.len() as u64), Limits { max_bytes: 16 * MB as u64, ..Limits::for_file(0) }] {
            let (r, peak) = peak_of(|| pickle::load_with(&pkl, lim));
            let e = match r {
                Ok(_) => panic!("{name}: parsed within a budget of {} MiB", lim.max_bytes >> 20),
                Err(e) => e.message,
            };
            assert!(e.contains("memory") || e.contains("limit"), "{name}: {e}");
            assert!(
                peak as u64 <= lim.max_bytes,
                "{name}: peak heap {} MiB over the budget of {} MiB ({e})",
                peak / MB,
                lim.max_bytes >> 20
            );
            report.push(format!(
                "{name}: {} bytes, budget {} MiB, peak {:.1} MiB: {e}",
                pkl.len(),
                lim.max_bytes >> 20,
                peak as f64 / MB as f64
            ));
        }
        // 2. The same pickle in a checkpoint, through `convert`: under 64x the file + 256 MB.
        let src = dir.join(format!("{name}.pth"));
        std::fs::write(&src, torch_zip("x", &pkl, &[], false)).unwrap();
        let (r, peak) = peak_of(|| convert_with(&src, &dst, Options { dtype: SaveDType::F16, ..Options::default() }));
        assert!(r.is_err(), "{name}: the checkpoint converted");
        let bound = 64 * std::fs::metadata(&src).unwrap().len() as usize + 256 * MB;
        assert!(peak <= bound, "{name}: convert peaked at {} MiB, over 64x the file + 256 MiB", peak / MB);
    }
    // 3. One 1 MB storage viewed whole by 20000 tensors: 80 GB of float32 if materialized.
    let mut p = PickleBuf::new();
    p.op(b'}').mark();
    for i in 0..20_000 {
        p.str(&format!("t{i}")).tensor("FloatStorage", "0", "cpu", 1 << 18, 0, &[1 << 18], &[1]);
    }
    p.op(b'u');
    let zip = torch_zip("x", &p.stop(), &[("0", f32_bytes(&vec![0.5; 1 << 18]))], false);
    let src = dir.join("views.pth");
    std::fs::write(&src, &zip).unwrap();
    let (r, peak) = peak_of(|| convert_with(&src, &dst, Options { dtype: SaveDType::F16, ..Options::default() }));
    let e = r.err().expect("views amplification refused").message;
    assert!(e.contains("float32") && e.contains("views"), "{e}");
    assert!(peak <= 64 * zip.len() + 256 * MB, "views: peak {} MiB", peak / MB);
    report.push(format!("views: {} bytes, peak {:.1} MiB: {e}", zip.len(), peak as f64 / MB as f64));
    // 4. A legitimate worst case within the bound: every full-size Mesorch-P key viewing one
    //    shared f16 storage (5 MB on disk, 250 MB as f32), converted to f16.
    let keys = expected_keys(&MesorchConfig::full(Variant::MesorchP));
    std::fs::write(&src, shared_storage_checkpoint(&keys, "HalfStorage")).unwrap();
    let (r, peak) = peak_of(|| convert_with(&src, &dst, Options { dtype: SaveDType::F16, ..Options::default() }));
    let file = std::fs::metadata(&src).unwrap().len() as usize;
    assert_eq!(r.unwrap().tensors, keys.len());
    assert!(peak <= 64 * file + 256 * MB, "full-size Mesorch-P: peak {} MiB for a {file}-byte file", peak / MB);
    report.push(format!("full-size shared-storage Mesorch-P: {file} bytes, peak {:.1} MiB", peak as f64 / MB as f64));
    println!("{}", report.join("\n"));
    std::fs::remove_dir_all(&dir).unwrap();
}
