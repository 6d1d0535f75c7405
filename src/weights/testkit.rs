//! Builders for tests: pickle byte streams, a small stored-zip writer, and a tiny checkpoint laid
//! out the way `torch.save` lays one out. Public so integration tests can use them.

/// Appends pickle opcodes to a buffer.
#[derive(Default)]
pub struct PickleBuf {
    pub b: Vec<u8>,
    memo: u32,
}

impl PickleBuf {
    pub fn new() -> Self {
        let mut p = PickleBuf::default();
        p.b.extend_from_slice(&[0x80, 2]);
        p
    }
    pub fn op(&mut self, o: u8) -> &mut Self {
        self.b.push(o);
        self
    }
    /// BINPUT of the next memo index.
    pub fn put(&mut self) -> &mut Self {
        self.b.extend_from_slice(&[b'q', self.memo as u8]);
        self.memo += 1;
        self
    }
    pub fn mark(&mut self) -> &mut Self {
        self.op(b'(')
    }
    pub fn str(&mut self, s: &str) -> &mut Self {
        if s.len() < 256 {
            self.b.extend_from_slice(&[0x8c, s.len() as u8]);
        } else {
            self.b.push(b'X');
            self.b.extend_from_slice(&(s.len() as u32).to_le_bytes());
        }
        self.b.extend_from_slice(s.as_bytes());
        self
    }
    pub fn int(&mut self, v: i64) -> &mut Self {
        if (0..256).contains(&v) {
            self.b.extend_from_slice(&[b'K', v as u8]);
        } else if (0..65536).contains(&v) {
            self.b.push(b'M');
            self.b.extend_from_slice(&(v as u16).to_le_bytes());
        } else if i32::try_from(v).is_ok() {
            self.b.push(b'J');
            self.b.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            self.b.extend_from_slice(&[0x8a, 8]);
            self.b.extend_from_slice(&v.to_le_bytes());
        }
        self
    }
    pub fn float(&mut self, v: f64) -> &mut Self {
        self.b.push(b'G');
        self.b.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.b.push(b'c');
        self.b.extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        self
    }
    pub fn int_tuple(&mut self, v: &[u64]) -> &mut Self {
        match v.len() {
            0 => self.op(b')'),
            1..=3 => {
                for &x in v {
                    self.int(x as i64);
                }
                self.op(0x84 + v.len() as u8)
            }
            _ => {
                self.mark();
                for &x in v {
                    self.int(x as i64);
                }
                self.op(b't')
            }
        }
    }
    /// A tensor the way torch.save pickles one.
    #[allow(clippy::too_many_arguments)]
    pub fn tensor(
        &mut self,
        class: &str,
        key: &str,
        loc: &str,
        numel: u64,
        offset: u64,
        size: &[u64],
        stride: &[u64],
    ) -> &mut Self {
        self.global("torch._utils", "_rebuild_tensor_v2").put();
        self.mark();
        self.mark().str("storage").put().global("torch", class).put().str(key).put().str(loc).put().int(numel as i64);
        self.op(b't').put().op(b'Q');
        self.int(offset as i64).int_tuple(size).put().int_tuple(stride).put().op(0x89);
        self.global("collections", "OrderedDict").put().op(b')').op(b'R').put();
        self.op(b't').put().op(b'R').put()
    }
    pub fn stop(&mut self) -> Vec<u8> {
        self.b.push(b'.');
        std::mem::take(&mut self.b)
    }
}

/// A zip of STORED entries with their CRC-32. With `zip64`, sizes and
/// offsets go through ZIP64 extra fields and a ZIP64 end record, as for files over 4 GiB.
pub fn write_zip(entries: &[(&str, &[u8])], zip64: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let off = out.len() as u64;
        let crc = crc32fast::hash(data);
        let (small_size, small_off) =
            if zip64 { (0xffff_ffffu32, 0xffff_ffffu32) } else { (data.len() as u32, off as u32) };
        let extra: Vec<u8> = if zip64 {
            let mut x = vec![1, 0, 24, 0];
            x.extend_from_slice(&(data.len() as u64).to_le_bytes());
            x.extend_from_slice(&(data.len() as u64).to_le_bytes());
            x.extend_from_slice(&off.to_le_bytes());
            x
        } else {
            Vec::new()
        };
        // Local header (torch pads its extra field for alignment; we add 3 bytes of padding here).
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&small_size.to_le_bytes());
        out.extend_from_slice(&small_size.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&7u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&[0x46, 0x42, 3, 0, b'Z', b'Z', b'Z']);
        out.extend_from_slice(data);
        // Central directory record.
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&[45, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&small_size.to_le_bytes());
        central.extend_from_slice(&small_size.to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend_from_slice(&small_off.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
        central.extend_from_slice(&extra);
    }
    let cd_off = out.len() as u64;
    out.extend_from_slice(&central);
    let n = entries.len() as u64;
    if zip64 {
        let rec = out.len() as u64;
        out.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
        out.extend_from_slice(&44u64.to_le_bytes());
        out.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(central.len() as u64).to_le_bytes());
        out.extend_from_slice(&cd_off.to_le_bytes());
        out.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&rec.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
    }
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    let (cnt, sz, off) = if zip64 {
        (0xffffu16, 0xffff_ffffu32, 0xffff_ffffu32)
    } else {
        (n as u16, central.len() as u32, cd_off as u32)
    };
    out.extend_from_slice(&cnt.to_le_bytes());
    out.extend_from_slice(&cnt.to_le_bytes());
    out.extend_from_slice(&sz.to_le_bytes());
    out.extend_from_slice(&off.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// One tensor of a test checkpoint: (name, storage class, key, offset, size, stride).
pub type TensorSpec<'a> = (&'a str, &'a str, &'a str, u64, &'a [u64], &'a [u64]);

/// The pickle of `{'model': OrderedDict(tensors) with _metadata, 'optimizer': {...},
/// 'epoch': 98, 'args': Namespace(...)}`, as torch.save writes it (GPU-tagged storages).
/// `numels` gives each storage key's element count.
pub fn official_pickle(tensors: &[TensorSpec], numels: &[(&str, u64)]) -> Vec<u8> {
    let mut p = PickleBuf::new();
    p.op(b'}').put().mark();
    p.str("model").put().global("collections", "OrderedDict").put().op(b')').op(b'R').put();
    p.mark();
    for (name, class, key, off, size, stride) in tensors {
        let numel = numels.iter().find(|(k, _)| k == key).map(|x| x.1).unwrap_or(0);
        p.str(name).put().tensor(class, key, "cuda:0", numel, *off, size, stride);
    }
    p.op(b'u');
    // state_dict._metadata through BUILD.
    p.op(b'}').put().str("_metadata").put().global("collections", "OrderedDict").put().op(b')').op(b'R').put();
    p.str("").put().op(b'}').put().str("version").put().int(1).op(b's').op(b's').op(b's').op(b'b');
    // Optimizer state referencing a storage that is not in the archive: it must never be read.
    p.str("optimizer").put().op(b'}').put().str("state").put().op(b'}').put().int(0).put();
    p.op(b'}').put().str("exp_avg").put().tensor("FloatStorage", "999", "cuda:0", 4, 0, &[4], &[1]);
    p.op(b's').op(b's').op(b's');
    p.str("epoch").put().int(98);
    // args: argparse.Namespace via NEWOBJ + BUILD; plus a hostile-looking global that must stay inert.
    p.str("args").put().global("argparse", "Namespace").put().op(b')').op(0x81).put();
    p.op(b'}').put().mark().str("lr").float(1e-4).str("cmd").global("os", "system").str("echo pwned").op(0x85).op(b'R');
    p.str("big").int(1 << 40).op(b'u').op(b'b');
    p.op(b'u');
    p.stop()
}

/// A torch.save zip with folder `name/`: data.pkl, data/<key> entries, version, byteorder.
pub fn torch_zip(folder: &str, pickle: &[u8], storages: &[(&str, Vec<u8>)], zip64: bool) -> Vec<u8> {
    let mut names: Vec<(String, &[u8])> = vec![(format!("{folder}/data.pkl"), pickle)];
    names.push((format!("{folder}/byteorder"), b"little"));
    for (k, d) in storages {
        names.push((format!("{folder}/data/{k}"), d));
    }
    names.push((format!("{folder}/version"), b"3\n"));
    names.push((format!("{folder}/.data/serialization_id"), b"0123456789"));
    let refs: Vec<(&str, &[u8])> = names.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    write_zip(&refs, zip64)
}

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
pub fn f16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect()
}
pub fn bf16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|&x| half::bf16::from_f32(x).to_le_bytes()).collect()
}

/// The small checkpoint most tests use: a shared f32 storage viewed three ways (plain, transposed,
/// offset), an f16 and a bf16 storage.
pub fn tiny_checkpoint(zip64: bool) -> Vec<u8> {
    let tensors: [TensorSpec; 5] = [
        ("a.weight", "FloatStorage", "0", 0, &[2, 3], &[3, 1]),
        ("a.t", "FloatStorage", "0", 0, &[3, 2], &[1, 3]),
        ("a.tail", "FloatStorage", "0", 2, &[4], &[1]),
        ("h", "HalfStorage", "1", 0, &[2, 2], &[2, 1]),
        ("b", "BFloat16Storage", "2", 1, &[2], &[1]),
    ];
    let pkl = official_pickle(&tensors, &[("0", 6), ("1", 4), ("2", 3)]);
    let storages = [
        ("0", f32_bytes(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0])),
        ("1", f16_bytes(&[0.5, -1.5, 2.25, 1024.0])),
        ("2", bf16_bytes(&[9.0, -3.0, 0.125])),
    ];
    torch_zip("mesorch-98", &pkl, &storages, zip64)
}

/// Value `k` of the shared test storage; exact in f16.
pub fn storage_value(k: usize) -> f32 {
    (k % 1000) as f32 * 0.25 - 100.0
}

/// A torch.save zip (official dict form) whose `model` holds every key of `keys`, all viewing one
/// shared storage of class `class` (FloatStorage or HalfStorage); every other 2-D tensor is a
/// column-major (strided) view. Keeps even full-size key lists small on disk.
pub fn shared_storage_checkpoint(keys: &[(String, Vec<usize>)], class: &str) -> Vec<u8> {
    shared_storage_checkpoint_with(keys, class, storage_value)
}

/// [`shared_storage_checkpoint`] with storage element `k` = `value(k)`.
pub fn shared_storage_checkpoint_with(
    keys: &[(String, Vec<usize>)],
    class: &str,
    value: impl Fn(usize) -> f32,
) -> Vec<u8> {
    let numel = keys.iter().map(|(_, s)| s.iter().product::<usize>()).max().unwrap_or(1).max(1);
    let vals: Vec<f32> = (0..numel).map(value).collect();
    let specs: Vec<(String, Vec<u64>, Vec<u64>)> = keys
        .iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let size: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
            let stride = if shape.len() == 2 && i % 2 == 1 {
                vec![1, shape[0] as u64]
            } else {
                let mut st = vec![1u64; shape.len()];
                for a in (0..shape.len().saturating_sub(1)).rev() {
                    st[a] = st[a + 1] * shape[a + 1] as u64;
                }
                st
            };
            (name.clone(), size, stride)
        })
        .collect();
    let tensors: Vec<TensorSpec> =
        specs.iter().map(|(n, s, st)| (n.as_str(), class, "0", 0u64, s.as_slice(), st.as_slice())).collect();
    let pkl = official_pickle(&tensors, &[("0", numel as u64)]);
    let data = if class == "HalfStorage" { f16_bytes(&vals) } else { f32_bytes(&vals) };
    torch_zip("mesorch-98", &pkl, &[("0", data)], false)
}

/// What `shared_storage_checkpoint` puts at flat (row-major) index `flat` of key number `i`.
pub fn shared_storage_expected(i: usize, shape: &[usize], flat: usize) -> f32 {
    if shape.len() == 2 && i % 2 == 1 {
        let (r, c) = (flat / shape[1], flat % shape[1]);
        storage_value(r + c * shape[0])
    } else {
        storage_value(flat)
    }
}

/// Pickles built to make an unbounded reader allocate far more than their size: copies of large
/// strings and globals (DUP, memo GET), memo doubling, floods of small values, memo entries and
/// dict items. Each is a few bytes to a few MB; none may make the reader pass its byte budget.
pub fn hostile_pickles() -> Vec<(&'static str, Vec<u8>)> {
    let big = |n: usize| {
        let mut v = vec![b'X'];
        v.extend_from_slice(&(n as u32).to_le_bytes());
        v.extend(std::iter::repeat_n(b'A', n));
        v
    };
    let mut out = Vec::new();
    // The report's case: a 1 MB module and name joined by STACK_GLOBAL, then DUP 100000 times.
    let mut p = vec![0x80, 4, b'('];
    p.extend(big(1 << 20));
    p.extend(big(1 << 20));
    p.push(0x93);
    p.extend(std::iter::repeat_n(b'2', 100_000));
    p.extend_from_slice(b"l.");
    out.push(("dup-global", p));
    // A 64 KB string fetched from the memo 200000 times.
    let mut p = vec![0x80, 2, b'('];
    p.extend(big(64 << 10));
    p.extend_from_slice(b"q\x00");
    for _ in 0..200_000 {
        p.extend_from_slice(b"h\x00");
    }
    p.extend_from_slice(b"l.");
    out.push(("get-string", p));
    // A 1 MB long integer duplicated.
    let mut p = vec![0x80, 2, b'(', 0x8b];
    p.extend_from_slice(&(1u32 << 20).to_le_bytes());
    p.extend(std::iter::repeat_n(7u8, 1 << 20));
    p.extend(std::iter::repeat_n(b'2', 10_000));
    p.extend_from_slice(b"l.");
    out.push(("dup-bigint", p));
    // Memo doubling: each round makes a pair of the previous value (2^60 leaves unbounded).
    let mut p = vec![0x80, 2, b']', b'q', 0];
    for _ in 0..60 {
        p.extend_from_slice(b"h\x00h\x00\x86q\x00");
    }
    p.push(b'.');
    out.push(("memo-doubling", p));
    // Small values: a 900-byte pickle nesting a pair of the whole value in itself through DUP.
    let mut p = vec![0x80, 2, b']'];
    for _ in 0..300 {
        p.extend_from_slice(b"2\x86");
    }
    p.push(b'.');
    out.push(("dup-doubling", p));
    // A flood of empty lists (one byte each, a slot of several dozen bytes each).
    let mut p = vec![0x80, 2, b'('];
    p.extend(std::iter::repeat_n(b']', 1_000_000));
    p.extend_from_slice(b"l.");
    out.push(("flood", p));
    // Two million memo entries.
    let mut p = vec![0x80, 2, b'N'];
    for i in 0..2_000_000u32 {
        p.push(b'r');
        p.extend_from_slice(&i.to_le_bytes());
    }
    p.push(b'.');
    out.push(("memo-flood", p));
    // A dict of 500000 items set at once.
    let mut p = vec![0x80, 2, b'}', b'('];
    for _ in 0..500_000 {
        p.extend_from_slice(b"K\x01K\x02");
    }
    p.extend_from_slice(b"u.");
    out.push(("wide-dict", p));
    // Objects: REDUCE of a global on its own copies, memoized and fetched again.
    let mut p = vec![0x80, 2];
    p.extend_from_slice(b"cmod\nname\nq\x00");
    for _ in 0..40 {
        p.extend_from_slice(b"h\x00h\x00\x85Rq\x00");
    }
    p.push(b'.');
    out.push(("object-doubling", p));
    out
}
