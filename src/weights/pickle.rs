//! A pickle reader that only interprets data and never executes anything.
//!
//! It runs the pickle virtual machine for the opcodes `torch.save` and the standard library's
//! protocol 2..5 picklers emit, with these rules:
//! - `GLOBAL` / `STACK_GLOBAL` push an inert [`Value::Global`]; nothing is imported or called.
//! - `REDUCE` / `NEWOBJ` of a *whitelisted* global are interpreted as data (tensor rebuilds,
//!   `OrderedDict`); of any other global they give an opaque [`Value::Object`] recording the
//!   callable and its arguments.
//! - `BUILD` on an object records the state; on a dict (the state_dict's `_metadata`) it is
//!   ignored; it never calls anything.
//! - `BINPERSID` turns torch's `('storage', type, key, location, numel)` tuples into
//!   [`Value::Storage`]; any other persistent id is an error.
//!
//! Memo entries are snapshots: a container mutated after `PUT` is seen by a later `GET` as it was
//! when memoized (torch checkpoints never rely on that sharing). Every length is checked against the
//! bytes left; the stack, the mark stack, the memo and the nesting depth are bounded, and so is the
//! memory the reader allocates: every value carries its size in bytes (its slot, its strings, its
//! children), every allocation and every copy (DUP, memo PUT and GET) is charged by that size, and
//! the total may not pass [`Limits::max_bytes`], by default proportional to the file the pickle came
//! from. Hostile input gives an error naming the byte offset and the opcode, never a panic, a hang
//! or an allocation beyond that budget.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Element type of a torch storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageDType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl StorageDType {
    /// From the storage class name `torch.<Name>Storage`.
    pub fn from_storage_class(name: &str) -> Option<StorageDType> {
        Some(match name {
            "DoubleStorage" => StorageDType::F64,
            "FloatStorage" => StorageDType::F32,
            "HalfStorage" => StorageDType::F16,
            "BFloat16Storage" => StorageDType::BF16,
            "LongStorage" => StorageDType::I64,
            "IntStorage" => StorageDType::I32,
            "ShortStorage" => StorageDType::I16,
            "CharStorage" => StorageDType::I8,
            "ByteStorage" | "UntypedStorage" => StorageDType::U8,
            "BoolStorage" => StorageDType::Bool,
            _ => return None,
        })
    }
    pub fn size(self) -> usize {
        match self {
            StorageDType::F64 | StorageDType::I64 => 8,
            StorageDType::F32 | StorageDType::I32 => 4,
            StorageDType::F16 | StorageDType::BF16 | StorageDType::I16 => 2,
            StorageDType::I8 | StorageDType::U8 | StorageDType::Bool => 1,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            StorageDType::F64 => "float64",
            StorageDType::F32 => "float32",
            StorageDType::F16 => "float16",
            StorageDType::BF16 => "bfloat16",
            StorageDType::I64 => "int64",
            StorageDType::I32 => "int32",
            StorageDType::I16 => "int16",
            StorageDType::I8 => "int8",
            StorageDType::U8 => "uint8",
            StorageDType::Bool => "bool",
        }
    }
}

/// A storage reference from a persistent id: its data lives in the zip entry `data/<key>`.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    pub dtype: StorageDType,
    pub key: String,
    pub location: String,
    /// Number of elements of `dtype`.
    pub numel: u64,
}

/// A tensor view of a storage (from `torch._utils._rebuild_tensor_v2`).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    /// In elements.
    pub offset: u64,
    pub size: Vec<u64>,
    /// In elements.
    pub stride: Vec<u64>,
}

/// A pickled value, interpreted as data only.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too large for i64: little-endian two's complement bytes.
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    /// Dicts and `OrderedDict`s, in insertion order (keys may repeat only if the pickle repeats them).
    Dict(Vec<(Value, Value)>),
    Set(Vec<Value>),
    /// A reference to `module.name`; never resolved.
    Global {
        module: String,
        name: String,
    },
    /// The opaque result of calling a non-whitelisted global: recorded, never run.
    Object {
        callable: Box<Value>,
        args: Box<Value>,
        state: Option<Box<Value>>,
    },
    /// Boxed, as [`Value::Tensor`]: they are rare, and every other value's slot stays small.
    Storage(Box<StorageRef>),
    Tensor(Box<TensorRef>),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    /// Look a string key up in a dict.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items.iter().rev().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }
    /// Short description for error messages.
    pub fn kind(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) | Value::BigInt(_) => "int".into(),
            Value::Float(_) => "float".into(),
            Value::Str(_) => "str".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::List(_) => "list".into(),
            Value::Tuple(_) => "tuple".into(),
            Value::Dict(_) => "dict".into(),
            Value::Set(_) => "set".into(),
            Value::Global { module, name } => format!("global {module}.{name}"),
            Value::Object { callable, .. } => format!("object of {}", callable.kind()),
            Value::Storage(_) => "storage".into(),
            Value::Tensor(_) => "tensor".into(),
        }
    }
}

/// Bounds on what one pickle may make the reader do.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Entries on the value stack.
    pub max_stack: usize,
    /// Open MARKs.
    pub max_marks: usize,
    /// Memo entries.
    pub max_memo: usize,
    /// Nesting depth of containers.
    pub max_depth: u32,
    /// Bytes the reader may allocate over the whole run, counted cumulatively (memory freed is not
    /// given back), so it bounds the peak too: every value's slot, string and container storage,
    /// stack and memo slots, and every deep copy DUP, PUT and GET make.
    pub max_bytes: u64,
}

/// Bytes every pickle may use whatever its size: enough for any real checkpoint's pickle of up to
/// a few MB (a full-size Mesorch pickle with AdamW state, 0.5 MB, charges 33 MB).
pub const BASE_BUDGET: u64 = 128 << 20;
/// Further bytes allowed per byte of the file the pickle came from.
pub const BYTES_PER_FILE_BYTE: u64 = 24;

impl Limits {
    /// The bounds for a pickle read out of a file of `file_len` bytes: a budget of
    /// [`BASE_BUDGET`] + [`BYTES_PER_FILE_BYTE`] x `file_len` bytes.
    pub fn for_file(file_len: u64) -> Limits {
        Limits {
            max_stack: 1 << 20,
            max_marks: 1 << 16,
            max_memo: 1 << 22,
            max_depth: 64,
            max_bytes: BASE_BUDGET.saturating_add(BYTES_PER_FILE_BYTE.saturating_mul(file_len)),
        }
    }
}

/// Bytes of one value's slot (in a Vec, a Box or on the stack).
const SLOT: u64 = std::mem::size_of::<Value>() as u64;
/// Growing storage (the stack, the memo, a list being appended to) doubles its block, and the old
/// and the new block live at once while it moves: up to three slots per element at that moment.
const GROWTH: u64 = 3;
/// Bytes charged per stack entry.
const STACK_SLOT: u64 = GROWTH * std::mem::size_of::<Entry>() as u64;
/// Bytes charged per memo entry beyond its value: the key, the entry and the table's control
/// bytes, with the table's growth.
const MEMO_SLOT: u64 = GROWTH * (std::mem::size_of::<(u32, Entry)>() as u64 + 8);

/// Stack entry: the value with its nesting depth and its size in bytes (slot, strings and
/// children), so copies can be charged in O(1).
#[derive(Clone)]
struct Entry {
    v: Value,
    depth: u32,
    bytes: u64,
}

/// Heap bytes a value holds outside its children.
fn own_heap(v: &Value) -> u64 {
    let refs = |s: &StorageRef| (s.key.len() + s.location.len()) as u64;
    match v {
        Value::Str(s) => s.len() as u64,
        Value::Bytes(b) | Value::BigInt(b) => b.len() as u64,
        Value::Global { module, name } => (module.len() + name.len()) as u64,
        Value::Storage(s) => SLOT + refs(s),
        Value::Tensor(t) => SLOT + refs(&t.storage) + 16 * t.size.len() as u64,
        _ => 0,
    }
}

fn leaf(v: Value) -> Entry {
    let bytes = SLOT + own_heap(&v);
    Entry { v, depth: 0, bytes }
}

fn op_name(op: u8) -> &'static str {
    match op {
        0x80 => "PROTO",
        0x95 => "FRAME",
        b'.' => "STOP",
        b'(' => "MARK",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'N' => "NONE",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'M' => "BININT2",
        0x8a => "LONG1",
        0x8b => "LONG4",
        b'G' => "BINFLOAT",
        b'X' => "BINUNICODE",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x8e => "BINBYTES8",
        0x96 => "BYTEARRAY8",
        b'}' => "EMPTY_DICT",
        b'd' => "DICT",
        b']' => "EMPTY_LIST",
        b'l' => "LIST",
        b')' => "EMPTY_TUPLE",
        b't' => "TUPLE",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        b'a' => "APPEND",
        b'e' => "APPENDS",
        b's' => "SETITEM",
        b'u' => "SETITEMS",
        b'c' => "GLOBAL",
        0x93 => "STACK_GLOBAL",
        b'R' => "REDUCE",
        b'b' => "BUILD",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        b'Q' => "BINPERSID",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        0x94 => "MEMOIZE",
        b'h' => "BINGET",
        b'j' => "LONG_BINGET",
        _ => "unknown opcode",
    }
}

struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset and code of the opcode being run (for errors).
    op_at: usize,
    op: u8,
    lim: Limits,
    stack: Vec<Entry>,
    marks: Vec<usize>,
    memo: HashMap<u32, Entry>,
    /// Bytes charged so far.
    charged: u64,
}

/// Run the pickle in `data` (a file of its own) and return the value STOP leaves on the stack.
pub fn load(data: &[u8]) -> Result<Value> {
    load_with(data, Limits::for_file(data.len() as u64))
}

pub fn load_with(data: &[u8], lim: Limits) -> Result<Value> {
    let mut vm = Vm {
        data,
        pos: 0,
        op_at: 0,
        op: 0,
        lim,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        charged: 0,
    };
    vm.run()
}

impl<'a> Vm<'a> {
    fn err(&self, msg: impl std::fmt::Display) -> Error {
        Error::invalid(format!(
            "pickle: byte offset {}, opcode {} (0x{:02x}): {msg}",
            self.op_at,
            op_name(self.op),
            self.op
        ))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let left = self.data.len() - self.pos;
        if n > left {
            return Err(self.err(format!("needs {n} bytes, only {left} left")));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn len_u64(&mut self, n: u64) -> Result<usize> {
        usize::try_from(n).map_err(|_| self.err(format!("length {n} too large")))
    }
    /// Read until newline (text-mode GLOBAL arguments), bounded by the data left.
    fn line(&mut self) -> Result<&'a str> {
        let rest = &self.data[self.pos..];
        let Some(n) = rest.iter().take(4096).position(|&c| c == b'\n') else {
            return Err(self.err("missing newline within 4096 bytes"));
        };
        let s = std::str::from_utf8(&rest[..n]).map_err(|_| self.err("line is not UTF-8"))?;
        self.pos += n + 1;
        Ok(s)
    }
    fn utf8(&self, b: &[u8]) -> Result<String> {
        String::from_utf8(b.to_vec()).map_err(|_| self.err("string is not valid UTF-8"))
    }

    fn charge(&mut self, bytes: u64) -> Result<()> {
        self.charged = self.charged.saturating_add(bytes);
        if self.charged > self.lim.max_bytes {
            return Err(self.err(format!(
                "pickle needs more than {} MiB of memory (limit for this file; values and their copies are counted)",
                self.lim.max_bytes >> 20
            )));
        }
        Ok(())
    }
    fn push(&mut self, e: Entry) -> Result<()> {
        if self.stack.len() >= self.lim.max_stack {
            return Err(self.err(format!("stack deeper than {} entries (limit)", self.lim.max_stack)));
        }
        if e.depth > self.lim.max_depth {
            return Err(self.err(format!("values nested deeper than {} (limit)", self.lim.max_depth)));
        }
        self.charge(STACK_SLOT)?;
        self.stack.push(e);
        Ok(())
    }
    /// Charge a new leaf, then push it.
    fn push_leaf(&mut self, v: Value) -> Result<()> {
        let e = leaf(v);
        self.charge(e.bytes)?;
        self.push(e)
    }
    /// Check that `n` bytes of string data may still be allocated, before copying them.
    fn afford(&self, n: usize) -> Result<()> {
        if self.charged.saturating_add(n as u64) > self.lim.max_bytes {
            return Err(self.err(format!(
                "pickle needs more than {} MiB of memory (limit for this file; values and their copies are counted)",
                self.lim.max_bytes >> 20
            )));
        }
        Ok(())
    }
    fn pop(&mut self) -> Result<Entry> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("stack underflow"));
        }
        Ok(self.stack.pop().expect("checked non-empty"))
    }
    fn top_mut(&mut self) -> Result<&mut Entry> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err("stack underflow"));
        }
        Ok(self.stack.last_mut().expect("checked non-empty"))
    }
    /// Pop everything above the last MARK, and the mark.
    fn pop_mark(&mut self) -> Result<Vec<Entry>> {
        let Some(m) = self.marks.pop() else {
            return Err(self.err("no MARK on the stack"));
        };
        Ok(self.stack.split_off(m))
    }
    /// A new container holding `items` (moved, not copied): charged for its slot and its
    /// storage of item slots.
    fn container(&mut self, items: Vec<Entry>, make: impl FnOnce(Vec<Value>) -> Value) -> Result<Entry> {
        self.charge(SLOT * (items.len() as u64 + 1))?;
        let depth = items.iter().map(|e| e.depth + 1).max().unwrap_or(0);
        let bytes = items.iter().map(|e| e.bytes).sum::<u64>() + SLOT;
        Ok(Entry { v: make(items.into_iter().map(|e| e.v).collect()), depth, bytes })
    }
    fn memo_put(&mut self, idx: u32) -> Result<()> {
        if !self.memo.contains_key(&idx) && self.memo.len() >= self.lim.max_memo {
            return Err(self.err(format!("more than {} memo entries (limit)", self.lim.max_memo)));
        }
        let bytes = self.top_mut()?.bytes;
        self.charge(bytes + MEMO_SLOT)?;
        let e = self.top_mut()?.clone();
        self.memo.insert(idx, e);
        Ok(())
    }
    fn memo_get(&mut self, idx: u32) -> Result<()> {
        let Some(bytes) = self.memo.get(&idx).map(|e| e.bytes) else {
            return Err(self.err(format!("memo index {idx} was never stored")));
        };
        self.charge(bytes)?;
        let e = self.memo[&idx].clone();
        self.push(e)
    }

    /// Add `items` (already popped) into the list/set/dict entry on top of the stack.
    fn extend_top(&mut self, items: Vec<Entry>, pairs: bool) -> Result<()> {
        let add_depth = items.iter().map(|e| e.depth + 1).max().unwrap_or(0);
        let add_bytes: u64 = items.iter().map(|e| e.bytes).sum();
        let max_depth = self.lim.max_depth;
        if pairs && items.len() % 2 != 0 {
            return Err(self.err("odd number of items for a dict"));
        }
        // The target's storage grows by one slot per item (a new state container: one more).
        self.charge(GROWTH * SLOT * (items.len() as u64 + 1))?;
        let op_err = |vm: &Self, kind: String| vm.err(format!("cannot add items to a {kind}"));
        let top = self.top_mut()?;
        let kind = top.v.kind();
        let mut it = items.into_iter().map(|e| e.v);
        match (&mut top.v, pairs) {
            (Value::List(l), false) | (Value::Set(l), false) => l.extend(it),
            (Value::Dict(d), true) => {
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
            }
            // Setting items on an opaque object (e.g. a dict subclass built by NEWOBJ): recorded as state.
            (Value::Object { state, .. }, true) => {
                let st = state.get_or_insert_with(|| Box::new(Value::Dict(Vec::new())));
                if let Value::Dict(d) = st.as_mut() {
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        d.push((k, v));
                    }
                }
            }
            (Value::Object { state, .. }, false) => {
                let st = state.get_or_insert_with(|| Box::new(Value::List(Vec::new())));
                if let Value::List(l) = st.as_mut() {
                    l.extend(it);
                }
            }
            _ => {
                drop(it);
                return Err(op_err(self, kind));
            }
        }
        top.depth = top.depth.max(add_depth + 1);
        top.bytes += add_bytes + SLOT;
        if top.depth > max_depth {
            return Err(self.err(format!("values nested deeper than {max_depth} (limit)")));
        }
        Ok(())
    }

    fn run(&mut self) -> Result<Value> {
        loop {
            self.op_at = self.pos;
            if self.pos >= self.data.len() {
                self.op = 0;
                return Err(Error::invalid(format!("pickle: byte offset {}: data ends before STOP", self.pos)));
            }
            self.op = self.data[self.pos];
            self.pos += 1;
            match self.op {
                0x80 => {
                    let p = self.u8()?;
                    if p > 5 {
                        return Err(self.err(format!("unsupported protocol {p}")));
                    }
                }
                0x95 => {
                    // FRAME: a length hint only; frames are read straight through.
                    let n = self.u64()?;
                    if n > (self.data.len() - self.pos) as u64 {
                        return Err(self.err(format!("frame of {n} bytes exceeds the data left")));
                    }
                }
                b'.' => {
                    let e = self.pop()?;
                    return Ok(e.v);
                }
                b'(' => {
                    if self.marks.len() >= self.lim.max_marks {
                        return Err(self.err(format!("more than {} open MARKs (limit)", self.lim.max_marks)));
                    }
                    self.marks.push(self.stack.len());
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let bytes = self.top_mut()?.bytes;
                    self.charge(bytes)?;
                    let e = self.top_mut()?.clone();
                    self.push(e)?;
                }
                b'N' => self.push_leaf(Value::None)?,
                0x88 => self.push_leaf(Value::Bool(true))?,
                0x89 => self.push_leaf(Value::Bool(false))?,
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push_leaf(Value::Int(v as i64))?
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push_leaf(Value::Int(v as i64))?
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push_leaf(Value::Int(v as i64))?
                }
                0x8a | 0x8b => {
                    let n = if self.op == 0x8a { self.u8()? as usize } else { self.u32()? as usize };
                    let b = self.take(n)?;
                    self.afford(n)?;
                    let v = if n == 0 {
                        Value::Int(0)
                    } else if n <= 8 {
                        let fill = if b[n - 1] & 0x80 != 0 { 0xff } else { 0 };
                        let mut a = [fill; 8];
                        a[..n].copy_from_slice(b);
                        Value::Int(i64::from_le_bytes(a))
                    } else {
                        Value::BigInt(b.to_vec())
                    };
                    self.push_leaf(v)?
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.push_leaf(Value::Float(f64::from_be_bytes(a)))?
                }
                b'X' | 0x8c | 0x8d => {
                    let n = match self.op {
                        b'X' => self.u32()? as u64,
                        0x8c => self.u8()? as u64,
                        _ => self.u64()?,
                    };
                    let n = self.len_u64(n)?;
                    let b = self.take(n)?;
                    self.afford(n)?;
                    let s = self.utf8(b)?;
                    self.push_leaf(Value::Str(s))?
                }
                b'T' | b'U' => {
                    // Python 2 str: kept as bytes.
                    let n = if self.op == b'T' { self.u32()? as usize } else { self.u8()? as usize };
                    let b = self.take(n)?;
                    self.afford(n)?;
                    self.push_leaf(Value::Bytes(b.to_vec()))?
                }
                b'B' | b'C' | 0x8e | 0x96 => {
                    let n = match self.op {
                        b'B' => self.u32()? as u64,
                        b'C' => self.u8()? as u64,
                        _ => self.u64()?,
                    };
                    let n = self.len_u64(n)?;
                    let b = self.take(n)?;
                    self.afford(n)?;
                    self.push_leaf(Value::Bytes(b.to_vec()))?
                }
                b'}' => self.push_leaf(Value::Dict(Vec::new()))?,
                b']' => self.push_leaf(Value::List(Vec::new()))?,
                b')' => self.push_leaf(Value::Tuple(Vec::new()))?,
                0x8f => self.push_leaf(Value::Set(Vec::new()))?,
                b'd' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(self.err("odd number of items for a dict"));
                    }
                    let e = self.container(items, |vs| {
                        let mut it = vs.into_iter();
                        let mut d = Vec::new();
                        while let (Some(k), Some(v)) = (it.next(), it.next()) {
                            d.push((k, v));
                        }
                        Value::Dict(d)
                    })?;
                    self.push(e)?
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    let e = self.container(items, Value::List)?;
                    self.push(e)?
                }
                b't' => {
                    let items = self.pop_mark()?;
                    let e = self.container(items, Value::Tuple)?;
                    self.push(e)?
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    let e = self.container(items, Value::Set)?;
                    self.push(e)?
                }
                0x85..=0x87 => {
                    let n = (self.op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    let e = self.container(items, Value::Tuple)?;
                    self.push(e)?
                }
                b'a' => {
                    let v = self.pop()?;
                    self.extend_top(vec![v], false)?
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    self.extend_top(items, false)?
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.extend_top(vec![k, v], true)?
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.extend_top(items, true)?
                }
                b'c' => {
                    let module = self.line()?.to_string();
                    let name = self.line()?.to_string();
                    self.push_leaf(Value::Global { module, name })?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module.v, name.v) {
                        (Value::Str(module), Value::Str(name)) => self.push_leaf(Value::Global { module, name })?,
                        _ => return Err(self.err("module and name must be strings")),
                    }
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let e = self.call(callable, args)?;
                    self.push(e)?
                }
                0x92 => {
                    let kwargs = self.pop()?;
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let args = self.container(vec![args, kwargs], Value::Tuple)?;
                    let e = self.call(callable, args)?;
                    self.push(e)?
                }
                b'b' => {
                    let state = self.pop()?;
                    self.charge(SLOT)?; // the box the state moves into
                    let max_depth = self.lim.max_depth;
                    let top = self.top_mut()?;
                    match &mut top.v {
                        Value::Object { state: s, .. } => {
                            top.depth = top.depth.max(state.depth + 2);
                            top.bytes += state.bytes;
                            *s = Some(Box::new(state.v));
                            if top.depth > max_depth {
                                return Err(self.err(format!("values nested deeper than {max_depth} (limit)")));
                            }
                        }
                        // The state_dict's `_metadata` and tensor state: ignored.
                        Value::Dict(_) | Value::Tensor(_) => {}
                        other => {
                            let k = other.kind();
                            return Err(self.err(format!("BUILD on a {k}")));
                        }
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let s = self.storage(pid.v)?;
                    self.push_leaf(Value::Storage(Box::new(s)))?
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    self.memo_put(i)?
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memo_put(i)?
                }
                0x94 => {
                    let i = u32::try_from(self.memo.len()).map_err(|_| self.err("memo full"))?;
                    self.memo_put(i)?
                }
                b'h' => {
                    let i = self.u8()? as u32;
                    self.memo_get(i)?
                }
                b'j' => {
                    let i = self.u32()?;
                    self.memo_get(i)?
                }
                _ => return Err(self.err("unsupported or unknown opcode")),
            }
        }
    }

    /// Interpret a persistent id: torch's `('storage', StorageClass, key, location, numel)`.
    fn storage(&self, pid: Value) -> Result<StorageRef> {
        let Value::Tuple(t) = pid else {
            return Err(self.err(format!("persistent id is a {}, expected a tuple", pid.kind())));
        };
        match t.as_slice() {
            [Value::Str(tag), Value::Global { module, name }, Value::Str(key), Value::Str(location), Value::Int(n)]
                if tag == "storage" =>
            {
                if module != "torch" {
                    return Err(self.err(format!("storage type {module}.{name} is not a torch storage")));
                }
                let dtype = StorageDType::from_storage_class(name)
                    .ok_or_else(|| self.err(format!("unsupported storage type torch.{name}")))?;
                let numel = u64::try_from(*n).map_err(|_| self.err(format!("negative storage size {n}")))?;
                Ok(StorageRef { dtype, key: key.clone(), location: location.clone(), numel })
            }
            _ => Err(self.err("persistent id is not ('storage', type, key, location, numel)")),
        }
    }

    /// REDUCE / NEWOBJ: whitelisted globals become data, anything else an opaque object.
    fn call(&mut self, callable: Entry, args: Entry) -> Result<Entry> {
        if let Value::Global { module, name } = &callable.v {
            match (module.as_str(), name.as_str()) {
                ("torch._utils", "_rebuild_tensor_v2") => {
                    let t = self.rebuild_tensor(&args.v)?;
                    let e = leaf(Value::Tensor(Box::new(t)));
                    self.charge(e.bytes)?;
                    return Ok(e);
                }
                ("torch._utils", "_rebuild_parameter") | ("torch._utils", "_rebuild_parameter_with_state") => {
                    if let Value::Tuple(a) = &args.v {
                        if let Some(Value::Tensor(t)) = a.first() {
                            let e = leaf(Value::Tensor(t.clone()));
                            self.charge(e.bytes)?;
                            return Ok(e);
                        }
                    }
                    return Err(self.err(format!("{name} expects (tensor, ...), got {}", args.v.kind())));
                }
                ("collections", "OrderedDict") => {
                    // Items, if any, arrive through SETITEMS afterwards.
                    if let Value::Tuple(a) = &args.v {
                        if a.is_empty() {
                            let e = leaf(Value::Dict(Vec::new()));
                            self.charge(e.bytes)?;
                            return Ok(e);
                        }
                    }
                }
                _ => {}
            }
        }
        // The object's slot and the two boxes its callable and arguments move into.
        self.charge(3 * SLOT)?;
        let depth = callable.depth.max(args.depth) + 1;
        let bytes = callable.bytes + args.bytes + SLOT;
        Ok(Entry {
            v: Value::Object { callable: Box::new(callable.v), args: Box::new(args.v), state: None },
            depth,
            bytes,
        })
    }

    fn rebuild_tensor(&self, args: &Value) -> Result<TensorRef> {
        let Value::Tuple(a) = args else {
            return Err(self.err(format!("_rebuild_tensor_v2 expects a tuple, got {}", args.kind())));
        };
        let ints = |v: &Value, what: &str| -> Result<Vec<u64>> {
            let Value::Tuple(items) = v else {
                return Err(self.err(format!("_rebuild_tensor_v2 {what} is a {}, expected a tuple", v.kind())));
            };
            items
                .iter()
                .map(|x| match x {
                    Value::Int(i) if *i >= 0 => Ok(*i as u64),
                    other => Err(self.err(format!("_rebuild_tensor_v2 {what} holds {other:?}"))),
                })
                .collect()
        };
        match a.as_slice() {
            [Value::Storage(s), Value::Int(off), size, stride, ..] if a.len() >= 4 && *off >= 0 => {
                let size = ints(size, "size")?;
                let stride = ints(stride, "stride")?;
                if size.len() != stride.len() {
                    return Err(self.err(format!("size {size:?} and stride {stride:?} differ in rank")));
                }
                Ok(TensorRef { storage: (**s).clone(), offset: *off as u64, size, stride })
            }
            _ => Err(self.err("_rebuild_tensor_v2 expects (storage, offset, size, stride, ...)")),
        }
    }
}
