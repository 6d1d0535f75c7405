//! Tests of the pickle reader, the torch zip reader, loading and the architecture key lists.

use std::io::Cursor;

use super::pickle::{load, load_with, Limits, Value};
use super::testkit::*;
use super::*;
use crate::tensor::Rng;

fn pk(body: &[u8]) -> Vec<u8> {
    let mut v = vec![0x80, 2];
    v.extend_from_slice(body);
    v.push(b'.');
    v
}
fn ok(body: &[u8]) -> Value {
    load(&pk(body)).unwrap_or_else(|e| panic!("{e}"))
}
fn err(data: &[u8]) -> String {
    match load(data) {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.message,
    }
}

#[test]
fn pickle_ints_floats_bools() {
    assert_eq!(ok(&[b'J', 0xfe, 0xff, 0xff, 0xff]), Value::Int(-2));
    assert_eq!(ok(&[b'K', 200]), Value::Int(200));
    assert_eq!(ok(&[b'M', 0x34, 0x12]), Value::Int(0x1234));
    assert_eq!(ok(&[0x8a, 0]), Value::Int(0));
    assert_eq!(ok(&[0x8a, 2, 0xff, 0x7f]), Value::Int(0x7fff));
    assert_eq!(ok(&[0x8a, 1, 0xff]), Value::Int(-1));
    assert_eq!(ok(&[0x8a, 9, 1, 0, 0, 0, 0, 0, 0, 0, 1]), Value::BigInt(vec![1, 0, 0, 0, 0, 0, 0, 0, 1]));
    assert_eq!(ok(&[0x8b, 2, 0, 0, 0, 0x00, 0x80]), Value::Int(-32768));
    let mut f = vec![b'G'];
    f.extend_from_slice(&1.5f64.to_be_bytes());
    assert_eq!(ok(&f), Value::Float(1.5));
    assert_eq!(ok(&[0x88]), Value::Bool(true));
    assert_eq!(ok(&[0x89]), Value::Bool(false));
    assert_eq!(ok(b"N"), Value::None);
}

#[test]
fn pickle_strings_and_bytes() {
    assert_eq!(ok(b"\x8c\x03abc"), Value::Str("abc".into()));
    assert_eq!(ok(b"X\x02\x00\x00\x00hi"), Value::Str("hi".into()));
    assert_eq!(ok(b"\x8d\x01\x00\x00\x00\x00\x00\x00\x00z"), Value::Str("z".into()));
    assert_eq!(ok(b"C\x02\x00\x01"), Value::Bytes(vec![0, 1]));
    assert_eq!(ok(b"B\x01\x00\x00\x00\x07"), Value::Bytes(vec![7]));
    assert_eq!(ok(b"U\x01a"), Value::Bytes(b"a".to_vec()));
    assert!(err(&pk(b"\x8c\x02\xff\xfe")).contains("UTF-8"));
}

#[test]
fn pickle_containers() {
    // EMPTY_LIST, MARK, 1, 2, APPENDS, 3 APPEND
    assert_eq!(ok(b"](K\x01K\x02eK\x03a"), Value::List(vec![Value::Int(1), Value::Int(2), Value::Int(3)]));
    assert_eq!(ok(b"(K\x01l"), Value::List(vec![Value::Int(1)]));
    assert_eq!(ok(b")"), Value::Tuple(vec![]));
    assert_eq!(ok(b"K\x01\x85"), Value::Tuple(vec![Value::Int(1)]));
    assert_eq!(ok(b"K\x01K\x02\x86"), Value::Tuple(vec![Value::Int(1), Value::Int(2)]));
    assert_eq!(ok(b"K\x01K\x02K\x03\x87"), Value::Tuple(vec![Value::Int(1), Value::Int(2), Value::Int(3)]));
    assert_eq!(ok(b"(K\x01K\x02K\x03K\x04t"), Value::Tuple((1..=4).map(Value::Int).collect()));
    let d = ok(b"}\x8c\x01aK\x01s(\x8c\x01bK\x02u");
    assert_eq!(d.get("a"), Some(&Value::Int(1)));
    assert_eq!(d.get("b"), Some(&Value::Int(2)));
    assert_eq!(ok(b"(\x8c\x01kK\x05d").get("k"), Some(&Value::Int(5)));
    assert_eq!(ok(b"\x8f(K\x01\x90"), Value::Set(vec![Value::Int(1)]));
    assert_eq!(ok(b"(K\x01\x91"), Value::Set(vec![Value::Int(1)]));
    // DUP, POP, POP_MARK
    assert_eq!(ok(b"K\x01\x32\x86"), Value::Tuple(vec![Value::Int(1), Value::Int(1)]));
    assert_eq!(ok(b"K\x01K\x020"), Value::Int(1));
    assert_eq!(ok(b"K\x01(K\x02K\x031"), Value::Int(1));
    assert!(err(&pk(b"K\x01K\x02\x86K\x03a")).contains("cannot add items"));
}

#[test]
fn pickle_memo_and_frame() {
    assert_eq!(ok(b"\x8c\x01xq\x050h\x05"), Value::Str("x".into()));
    assert_eq!(ok(b"\x8c\x01xr\x00\x00\x01\x000j\x00\x00\x01\x00"), Value::Str("x".into()));
    assert_eq!(ok(b"\x8c\x01x\x94\x8c\x01y\x94\x86h\x01\x86"), {
        let xy = Value::Tuple(vec![Value::Str("x".into()), Value::Str("y".into())]);
        Value::Tuple(vec![xy, Value::Str("y".into())])
    });
    let mut f = vec![0x80, 4, 0x95];
    f.extend_from_slice(&3u64.to_le_bytes());
    f.extend_from_slice(b"K\x07.");
    assert_eq!(load(&f).unwrap(), Value::Int(7));
}

#[test]
fn pickle_globals_are_inert() {
    // GLOBAL + REDUCE of a non-whitelisted callable: an opaque record, nothing runs.
    let v = ok(b"cos\nsystem\n\x8c\x02rm\x85R");
    match v {
        Value::Object { callable, args, state } => {
            assert_eq!(*callable, Value::Global { module: "os".into(), name: "system".into() });
            assert_eq!(*args, Value::Tuple(vec![Value::Str("rm".into())]));
            assert!(state.is_none());
        }
        other => panic!("{other:?}"),
    }
    // STACK_GLOBAL + NEWOBJ + BUILD records the state.
    let v = ok(b"\x8c\x08argparse\x8c\tNamespace\x93)\x81}\x8c\x02lrK\x01sb");
    let Value::Object { state: Some(st), .. } = v else { panic!() };
    assert_eq!(st.get("lr"), Some(&Value::Int(1)));
    // NEWOBJ_EX
    let v = ok(b"cnumpy\ndtype\n)}\x92");
    assert!(matches!(v, Value::Object { .. }));
    // BUILD on an OrderedDict is ignored (the state_dict's _metadata).
    let v = ok(b"ccollections\nOrderedDict\n)R}\x8c\t_metadata}sb");
    assert_eq!(v, Value::Dict(vec![]));
}

#[test]
fn pickle_tensor_rebuild() {
    let mut p = PickleBuf::new();
    p.tensor("HalfStorage", "7", "cuda:0", 12, 2, &[2, 3], &[1, 2]);
    let v = load(&p.stop()).unwrap();
    let Value::Tensor(t) = v else { panic!("{v:?}") };
    assert_eq!(t.storage.dtype, StorageDType::F16);
    assert_eq!(t.storage.key, "7");
    assert_eq!(t.storage.location, "cuda:0");
    assert_eq!((t.offset, t.size, t.stride), (2, vec![2, 3], vec![1, 2]));
    // _rebuild_parameter unwraps to the tensor.
    let mut p = PickleBuf::new();
    p.global("torch._utils", "_rebuild_parameter");
    p.tensor("FloatStorage", "0", "cpu", 1, 0, &[1], &[1]).op(0x88);
    p.global("collections", "OrderedDict").op(b')').op(b'R').op(0x87).op(b'R');
    assert!(matches!(load(&p.stop()).unwrap(), Value::Tensor(_)));
    // Persistent ids other than torch storages are refused.
    assert!(err(&pk(b"\x8c\x03abcQ")).contains("persistent id"));
    assert!(err(&pk(b"(\x8c\x07storagecos\nsystem\n\x8c\x010\x8c\x03cpuK\x01tQ")).contains("not a torch storage"));
}

#[test]
fn pickle_hostile_inputs_fail_cleanly() {
    // Unknown opcode, with offset and opcode in the message.
    let m = err(&pk(b"K\x01\xff"));
    assert!(m.contains("byte offset 4") && m.contains("0xff"), "{m}");
    // Memo index never stored.
    assert!(err(&pk(b"h\x05")).contains("memo index 5"));
    assert!(err(&pk(b"j\xff\xff\xff\xff")).contains("memo index"));
    // Huge lengths.
    assert!(err(&pk(b"X\xff\xff\xff\xff")).contains("needs 4294967295 bytes"));
    assert!(err(&pk(b"\x8d\xff\xff\xff\xff\xff\xff\xff\xff")).contains("bytes"));
    assert!(err(&pk(b"\x8b\xff\xff\xff\x7f")).contains("bytes"));
    assert!(err(&pk(b"\x95\xff\xff\xff\xff\xff\xff\xff\xff")).contains("frame"));
    // Underflow, missing MARK, no STOP, empty input.
    assert!(err(&pk(b"R")).contains("underflow"));
    assert!(err(&pk(b"e")).contains("MARK"));
    assert!(err(&[0x80, 2, b'K', 1]).contains("before STOP"));
    assert!(load(&[]).is_err());
    // Deep nesting: 100k nested lists, and 100k open marks.
    let mut deep = vec![0x80, 2];
    deep.extend(std::iter::repeat_n(b']', 100_000));
    deep.extend(std::iter::repeat_n(b'a', 99_999));
    deep.push(b'.');
    assert!(err(&deep).contains("nested deeper"));
    let mut marks = vec![0x80, 2];
    marks.extend(std::iter::repeat_n(b'(', 100_000));
    assert!(err(&marks).contains("MARK"));
    // A small stack limit is enforced.
    let lim = Limits { max_stack: 10, ..Limits::for_file(0) };
    assert!(load_with(&pk(&[b'N'; 20]), lim).unwrap_err().message.contains("stack"));
}

/// Every hostile pickle is refused by its byte budget (tests/memory_bounds.rs measures the real
/// heap against it), and the work done before refusing is bounded by the budget too: a budget of
/// 1 MiB stops each within the first megabyte-worth of charges.
#[test]
fn pickle_bombs_hit_the_byte_budget() {
    for (name, pkl) in hostile_pickles() {
        let m = load(&pkl).unwrap_err().message;
        assert!(m.contains("memory") || m.contains("limit"), "{name}: {m}");
        let tight = Limits { max_bytes: 1 << 20, ..Limits::for_file(0) };
        let m = load_with(&pkl, tight).unwrap_err().message;
        assert!(m.contains("more than 1 MiB of memory"), "{name}: {m}");
    }
    // The budget grows with the file: 128 MiB + 24 bytes per byte.
    assert_eq!(Limits::for_file(0).max_bytes, 128 << 20);
    assert_eq!(Limits::for_file(1 << 20).max_bytes, (128 << 20) + 24 * (1 << 20));
}

/// A full-size official Mesorch checkpoint's pickle (804 tensors, AdamW state for each: step,
/// exp_avg, exp_avg_sq, every object memoized as torch.save does) needs well under the base budget.
#[test]
fn full_size_official_pickle_fits_the_base_budget() {
    use crate::models::mesorch::{expected_keys, MesorchConfig, Variant};
    let keys = expected_keys(&MesorchConfig::full(Variant::Mesorch));
    let mut p = PickleBuf::new();
    p.op(b'}').put().mark().str("model").put().op(b'}').put().mark();
    let mut storage = 0;
    for (name, shape) in &keys {
        let size: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let mut stride = vec![1u64; size.len()];
        for a in (0..size.len().saturating_sub(1)).rev() {
            stride[a] = stride[a + 1] * size[a + 1];
        }
        let numel = size.iter().product::<u64>() as i64;
        p.str(name).put().tensor("FloatStorage", &storage.to_string(), "cuda:0", numel as u64, 0, &size, &stride);
        storage += 1;
    }
    p.op(b'u').str("optimizer").put().op(b'}').put().str("state").put().op(b'}').put().mark();
    for (i, (_, shape)) in keys.iter().enumerate() {
        let size: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let numel = size.iter().product::<u64>();
        p.int(i as i64).op(b'}').put().mark();
        p.str("step").tensor("FloatStorage", &storage.to_string(), "cpu", 1, 0, &[], &[]);
        for k in ["exp_avg", "exp_avg_sq"] {
            storage += 1;
            let st = vec![1u64; size.len()];
            p.str(k).put().tensor("FloatStorage", &storage.to_string(), "cuda:0", numel, 0, &size, &st);
        }
        storage += 1;
        p.op(b'u');
    }
    p.op(b'u').op(b's').op(b'u');
    let pkl = p.stop();
    let half = Limits { max_bytes: super::pickle::BASE_BUDGET / 2, ..Limits::for_file(0) };
    let v = load_with(&pkl, half).unwrap_or_else(|e| panic!("{} byte pickle: {e}", pkl.len()));
    let Some(Value::Dict(m)) = v.get("model") else { panic!("no model") };
    assert_eq!(m.len(), keys.len());
    // And it is refused below its real need, so the bound above means something.
    let tiny = Limits { max_bytes: pkl.len() as u64, ..Limits::for_file(0) };
    assert!(load_with(&pkl, tiny).is_err());
}

#[test]
fn pickle_truncated_at_every_byte_is_an_error() {
    let full = official_pickle(&[("w", "FloatStorage", "0", 0, &[2], &[1])], &[("0", 2)]);
    assert!(load(&full).is_ok());
    for n in 0..full.len() {
        assert!(load(&full[..n]).is_err(), "prefix of {n} bytes parsed");
    }
}

fn load_bytes(b: &[u8]) -> Result<Loaded> {
    load_torch_zip(Cursor::new(b))
}

fn check_tiny(l: &Loaded) {
    let s = &l.store;
    assert_eq!(s.len(), 5, "{:?}", s.tensors.keys().collect::<Vec<_>>());
    assert_eq!(s.get("a.weight").unwrap().data, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let t = s.get("a.t").unwrap();
    assert_eq!(t.shape, vec![3, 2]);
    assert_eq!(t.data, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    assert_eq!(s.get("a.tail").unwrap().data, vec![2.0, 3.0, 4.0, 5.0]);
    assert_eq!(s.get("h").unwrap().data, vec![0.5, -1.5, 2.25, 1024.0]);
    assert_eq!(s.get("h").unwrap().shape, vec![2, 2]);
    assert_eq!(s.get("b").unwrap().data, vec![-3.0, 0.125]);
    assert_eq!(l.source_dtypes.get("float32"), Some(&3));
    assert_eq!(l.source_dtypes.get("float16"), Some(&1));
    assert_eq!(l.source_dtypes.get("bfloat16"), Some(&1));
    assert!(l.notes.iter().any(|n| n.contains("ignored top-level entries: optimizer, epoch, args")), "{:?}", l.notes);
}

#[test]
fn loads_official_checkpoint_with_views_and_half_types() {
    check_tiny(&load_bytes(&tiny_checkpoint(false)).unwrap());
}

#[test]
fn loads_zip64_archive() {
    check_tiny(&load_bytes(&tiny_checkpoint(true)).unwrap());
}

#[test]
fn loads_bare_state_dict_under_any_folder_name() {
    let mut p = PickleBuf::new();
    p.global("collections", "OrderedDict").op(b')').op(b'R').put().mark();
    p.str("module.x").tensor("FloatStorage", "3", "cpu", 2, 0, &[2], &[1]);
    p.op(b'u');
    let z = torch_zip("weird name", &p.stop(), &[("3", f32_bytes(&[7.0, 8.0]))], false);
    let l = load_bytes(&z).unwrap();
    assert_eq!(l.store.get("x").unwrap().data, vec![7.0, 8.0]);
    assert!(l.notes.iter().any(|n| n.contains("module.")));
}

#[test]
fn storage_problems_are_named() {
    // Declared larger than the entry.
    let mut p = PickleBuf::new();
    p.op(b'}').str("w").tensor("FloatStorage", "0", "cpu", 10, 0, &[10], &[1]).op(b's');
    let z = torch_zip("f", &p.stop(), &[("0", f32_bytes(&[1.0]))], false);
    let m = load_bytes(&z).unwrap_err().message;
    assert!(m.contains("storage '0'") && m.contains("4 bytes"), "{m}");
    // A flipped byte in a storage, or in the pickle, fails the entry's CRC-32.
    let good = tiny_checkpoint(false);
    for entry in ["mesorch-98/data/1", "mesorch-98/data.pkl"] {
        let at = good.windows(entry.len()).position(|w| w == entry.as_bytes()).unwrap() + entry.len() + 7 + 1;
        let mut z = good.clone();
        z[at] ^= 0x10;
        let m = load_bytes(&z).unwrap_err().message;
        assert!(m.contains(entry) && m.contains("CRC-32"), "{entry}: {m}");
    }
    // A view reaching past its storage.
    let mut p = PickleBuf::new();
    p.op(b'}').str("w").tensor("FloatStorage", "0", "cpu", 2, 1, &[2], &[1]).op(b's');
    let z = torch_zip("f", &p.stop(), &[("0", f32_bytes(&[1.0, 2.0]))], false);
    let m = load_bytes(&z).unwrap_err().message;
    assert!(m.contains("tensor 'w'") && m.contains("reaches element 2"), "{m}");
    // Expanded (stride 0) views larger than their storage.
    let mut p = PickleBuf::new();
    p.op(b'}').str("w").tensor("FloatStorage", "0", "cpu", 1, 0, &[8], &[0]).op(b's');
    let z = torch_zip("f", &p.stop(), &[("0", f32_bytes(&[1.0]))], false);
    assert!(load_bytes(&z).unwrap_err().message.contains("larger than its storage"));
    // ... and huge ones are refused before anything is allocated, by the file's tensor budget.
    let mut p = PickleBuf::new();
    p.op(b'}').str("w").tensor("FloatStorage", "0", "cpu", 1, 0, &[1 << 40], &[0]).op(b's');
    let z = torch_zip("f", &p.stop(), &[("0", f32_bytes(&[1.0]))], false);
    let m = load_bytes(&z).unwrap_err().message;
    assert!(m.contains("'w'") && m.contains("MiB as float32"), "{m}");
    // Missing storage entry.
    let mut p = PickleBuf::new();
    p.op(b'}').str("w").tensor("FloatStorage", "5", "cpu", 1, 0, &[1], &[1]).op(b's');
    let z = torch_zip("f", &p.stop(), &[], false);
    assert!(load_bytes(&z).unwrap_err().message.contains("no entry data/5"));
    // Compressed entries are refused by name.
    let mut z = tiny_checkpoint(false);
    let first_cd = (0..z.len() - 4).find(|&i| z[i..i + 4] == [0x50, 0x4b, 1, 2]).unwrap();
    z[first_cd + 10] = 8; // deflate, on data.pkl
    assert!(load_bytes(&z).unwrap_err().message.contains("compressed"));
}

#[test]
fn zip_truncated_at_every_byte_is_an_error() {
    let full = tiny_checkpoint(false);
    for n in 0..full.len() {
        assert!(load_bytes(&full[..n]).is_err(), "prefix of {n} bytes loaded");
    }
}

#[test]
fn random_mutations_never_panic() {
    let seed = Rng::fresh_seed();
    let mut rng = Rng::new(seed);
    let base = tiny_checkpoint(false);
    let tensors: [TensorSpec; 2] =
        [("a.weight", "FloatStorage", "0", 0, &[2, 3], &[3, 1]), ("h", "HalfStorage", "1", 0, &[2, 2], &[2, 1])];
    let pkl = official_pickle(&tensors, &[("0", 6), ("1", 4)]);
    let storages = [("0", f32_bytes(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0])), ("1", f16_bytes(&[0.5, -1.5, 2.25, 1024.0]))];
    let (mut loaded, mut crc_refused) = (0, 0);
    for round in 0..3000 {
        let flips = rng.range(1, 4);
        let mutate = |b: &mut Vec<u8>, rng: &mut Rng| {
            for _ in 0..flips {
                let i = rng.range(0, b.len() - 1);
                b[i] = match rng.range(0, 3) {
                    0 => 0xff,
                    1 => 0,
                    _ => rng.next_u64() as u8,
                };
            }
        };
        // Half the rounds mutate the pickle inside a well-formed zip (valid CRCs), so the pickle
        // reader sees the damage; the rest flip bytes anywhere in the file.
        let b = if round % 2 == 0 {
            let mut p = pkl.clone();
            mutate(&mut p, &mut rng);
            torch_zip("m", &p, &storages, false)
        } else {
            let mut b = base.clone();
            mutate(&mut b, &mut rng);
            b
        };
        match std::panic::catch_unwind(|| load_bytes(&b)) {
            Ok(Ok(_)) => loaded += 1,
            Ok(Err(e)) => crc_refused += e.message.contains("CRC-32") as usize,
            Err(_) => panic!("panic on round {round} (FORGE_SEED={seed})"),
        }
    }
    assert!(loaded < 3000, "FORGE_SEED={seed}");
    assert!(crc_refused > 0, "no flip was caught by a CRC (FORGE_SEED={seed})");
}

/// The `forge` entry our training harness writes becomes metadata JSON (plain data only).
#[test]
fn forge_entry_becomes_metadata() {
    let ints = |xs: &[i64]| Value::List(xs.iter().map(|&x| Value::Int(x)).collect());
    let s = |x: &str| Value::Str(x.into());
    let root = Value::Dict(vec![
        (s("model"), Value::Dict(vec![])),
        (
            s("forge"),
            Value::Dict(vec![
                (s("input_size"), Value::Tuple(vec![Value::Int(256), Value::Int(320)])),
                (s("config"), Value::Dict(vec![(s("mit_heads"), ints(&[1, 2, 3, 4])), (s("lr"), Value::Float(0.5))])),
                (s("other"), s("ignored")),
            ]),
        ),
    ]);
    let m = super::forge_metadata(&root);
    assert_eq!(m.len(), 2, "{m:?}");
    assert_eq!(m["input_size"], "[256,320]");
    assert_eq!(m["config"], r#"{"lr":0.5,"mit_heads":[1,2,3,4]}"#);
    // Values that are not plain data are left out, not guessed at.
    let odd = Value::Dict(vec![(
        s("forge"),
        Value::Dict(vec![(s("config"), Value::Global { module: "os".into(), name: "system".into() })]),
    )]);
    assert!(super::forge_metadata(&odd).is_empty());
}
