//! The inputs of `infer`: listing files, folders and patterns, unique file stems, and resumable,
//! sharded batches (`--shard I/N`, `--jsonl OUT.jsonl`).
//!
//! `--shard I/N` keeps every N-th image of the sorted listing, starting at the I-th (0-based, as
//! Kubernetes' `JOB_COMPLETION_INDEX`), so N processes given the same inputs split them without
//! talking to each other. `--jsonl` appends one line per image that was analysed and written:
//! the report with the file's `sha256`; a line is one `write` on a file opened for appending, so
//! lines of processes sharing a local file do not interleave. On start the lines already there
//! are read, and an image whose (path, sha256) has a line is skipped: a killed job, run again
//! with the same arguments, does only what is left. A line cut short (the process was killed while
//! writing it) is skipped and its image done again; the file is never cut or rewritten, since
//! another shard may be appending to it. Any other line that is not one of ours is an error, so
//! that we never append to someone else's file.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::imageio::IMAGE_EXTENSIONS;

/// `--shard I/N`: this process's share of the sorted listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub fn parse(s: &str) -> Result<Shard> {
        let bad = || Error::invalid(format!("--shard {s}: expected I/N with 0 <= I < N, e.g. 0/4"));
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) =
            (i.trim().parse::<usize>().map_err(|_| bad())?, n.trim().parse::<usize>().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether the `k`-th image of the sorted listing is this shard's.
    pub fn takes(&self, k: usize) -> bool {
        k % self.count == self.index
    }
}

/// Files, folders (their image files, sorted, not recursive) and glob patterns, in order. A
/// folder or pattern that gives no image is one failed input (the path as given and why), and
/// the batch goes on; a missing or unreadable file fails when it is read.
pub fn expand_inputs(inputs: &[PathBuf]) -> Vec<std::result::Result<PathBuf, (PathBuf, Error)>> {
    let mut out = Vec::new();
    for p in inputs {
        let text = p.to_string_lossy();
        let listed = if p.is_dir() {
            let is_image = |f: &Path| {
                f.is_file()
                    && f.extension()
                        .and_then(|x| x.to_str())
                        .is_some_and(|x| IMAGE_EXTENSIONS.contains(&x.to_ascii_lowercase().as_str()))
            };
            std::fs::read_dir(p)
                .map_err(|e| Error::new(ErrorKind::Io, format!("cannot list the folder: {e}")))
                .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|f| is_image(f)).collect::<Vec<_>>())
                .and_then(|files| {
                    let what = IMAGE_EXTENSIONS.join(" ");
                    (!files.is_empty())
                        .then_some(files)
                        .ok_or_else(|| Error::invalid(format!("no image files ({what}) in this folder")))
                })
        } else if !p.exists() && text.contains(['*', '?', '[']) {
            glob::glob(&text)
                .map_err(|e| Error::invalid(format!("bad pattern: {e}")))
                .map(|paths| paths.filter_map(|r| r.ok()).filter(|f| f.is_file()).collect::<Vec<_>>())
                .and_then(|files| {
                    (!files.is_empty()).then_some(files).ok_or_else(|| Error::invalid("the pattern matches no file"))
                })
        } else {
            out.push(Ok(p.clone()));
            continue;
        };
        match listed {
            Ok(mut files) => {
                files.sort();
                out.extend(files.into_iter().map(Ok));
            }
            Err(e) => out.push(Err((p.clone(), e))),
        }
    }
    out
}

/// Refuse an output folder that is the folder of an input: the outputs would overwrite files
/// there (a ground-truth `x.mask.png`) and the next run over that folder would read them back
/// as inputs. `out` need not exist.
pub fn check_out_folder(out: &Path, inputs: &[&Path], input_args: &[PathBuf]) -> Result<()> {
    let Ok(out_c) = out.canonicalize() else { return Ok(()) }; // a new folder holds no input
    let folders = input_args.iter().filter(|p| p.is_dir()).map(|p| (p.as_path(), p.to_path_buf()));
    let parents = inputs
        .iter()
        .map(|f| (*f, f.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf()));
    for (input, folder) in folders.chain(parents) {
        if folder.canonicalize().is_ok_and(|c| c == out_c) {
            return Err(Error::invalid(format!(
                "--out {} is the folder of the input {}: the outputs would overwrite files there (such as a \
                 ground-truth S.mask.png) and later runs would read them as inputs; choose another folder \
                 (the default is forge-out)",
                out.display(),
                input.display()
            )));
        }
    }
    Ok(())
}

/// File stems, unique within the batch: the first input with a stem keeps it, later ones get the
/// first free `-2`, `-3`, ... that is neither taken nor any input's own stem (`a/x.png`,
/// `b/x.jpg`, `x-2.png` -> `x`, `x-3`, `x-2`). Compared without case, for case-insensitive
/// file systems.
pub fn unique_stems(inputs: &[PathBuf]) -> Vec<String> {
    let stem = |p: &PathBuf| p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into());
    let natural: HashSet<String> = inputs.iter().map(|p| stem(p).to_lowercase()).collect();
    let mut used: HashSet<String> = HashSet::new();
    inputs
        .iter()
        .map(|p| {
            let s = stem(p);
            if used.insert(s.to_lowercase()) {
                return s;
            }
            (2..)
                .map(|n| format!("{s}-{n}"))
                .find(|c| !natural.contains(&c.to_lowercase()) && used.insert(c.to_lowercase()))
                .expect("some suffix is free")
        })
        .collect()
}

/// One input of the listing: an image's path, or an argument that gave none and why.
pub type Item = std::result::Result<PathBuf, (PathBuf, Error)>;

/// The inputs to run and each image's file stem. Without a shard: the listing as given, stems
/// unique in it ([`unique_stems`]). With one: the images sorted and each
/// listed once, stems made unique over that whole sorted listing (so an image has the same stem
/// whichever shard runs it), then this shard's share; arguments that gave no image come first in
/// every shard.
pub fn listing(expanded: Vec<Item>, shard: Option<Shard>) -> (Vec<Item>, Vec<String>) {
    let Some(shard) = shard else {
        let files: Vec<PathBuf> = expanded.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
        return (expanded, unique_stems(&files));
    };
    let (mut files, mut out) = (Vec::new(), Vec::new());
    for item in expanded {
        match item {
            Ok(p) => files.push(p),
            Err(e) => out.push(Err(e)),
        }
    }
    files.sort();
    files.dedup();
    let stems = unique_stems(&files);
    let mut mine = Vec::new();
    for (k, (f, s)) in files.into_iter().zip(stems).enumerate() {
        if shard.takes(k) {
            out.push(Ok(f));
            mine.push(s);
        }
    }
    (out, mine)
}

/// A line longer than this is not one of ours (a report with thousands of regions is ~1 MB).
const MAX_LINE_BYTES: u64 = 64 << 20;

/// The JSON-lines log of a batch: which images it holds, and appending to it.
pub struct JsonlLog {
    path: PathBuf,
    file: File,
    done: HashSet<(String, String)>,
    /// Report lines read at start.
    pub lines: usize,
    /// Unfinished lines read at start (a run killed while writing one): their images are redone.
    pub torn: usize,
    /// The file ends inside a line: the next append starts a new one.
    needs_newline: bool,
}

/// What one line of the log is.
enum Line {
    Report(String, String),
    /// Empty, or a JSON object cut short: an unfinished line.
    Torn,
    Foreign,
}

fn classify(bytes: &[u8]) -> Line {
    let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if text.iter().all(u8::is_ascii_whitespace) {
        return Line::Torn;
    }
    match serde_json::from_slice::<serde_json::Value>(text) {
        Ok(v) => match (v.get("file").and_then(|f| f.as_str()), v.get("sha256").and_then(|s| s.as_str())) {
            (Some(f), Some(s)) => Line::Report(f.to_string(), s.to_string()),
            _ => Line::Foreign,
        },
        Err(e) if e.classify() == serde_json::error::Category::Eof && text.first() == Some(&b'{') => Line::Torn,
        Err(_) => Line::Foreign,
    }
}

impl JsonlLog {
    /// Open (or create) `path` and read the (file, sha256) of each line. The file is never cut or
    /// rewritten (another process may be appending to it): an unfinished line stays, is skipped on
    /// reading, and the next append starts on a line of its own.
    pub fn open(path: &Path) -> Result<JsonlLog> {
        let io = |what: &str, e: std::io::Error| {
            Error::new(ErrorKind::Io, format!("--jsonl {}: {what}: {e}", path.display()))
        };
        if let Ok(meta) = std::fs::metadata(path) {
            if !meta.is_file() {
                return Err(Error::invalid(format!("--jsonl {}: not a regular file", path.display())));
            }
        }
        let mut file =
            OpenOptions::new().read(true).append(true).create(true).open(path).map_err(|e| io("cannot open", e))?;
        let mut done = HashSet::new();
        let (mut lines, mut torn, mut needs_newline, mut number) = (0usize, 0usize, false, 0usize);
        let mut reader = BufReader::new(&mut file);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = reader
                .by_ref()
                .take(MAX_LINE_BYTES + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|e| io("cannot read", e))?;
            if n == 0 {
                break;
            }
            number += 1;
            if n as u64 > MAX_LINE_BYTES {
                return Err(Error::invalid(format!(
                    "--jsonl {}: line {number} is longer than {MAX_LINE_BYTES} bytes: not a wgpu-forge JSON-lines file",
                    path.display()
                )));
            }
            needs_newline = buf.last() != Some(&b'\n');
            match classify(&buf) {
                Line::Report(f, s) => {
                    lines += 1;
                    done.insert((f, s));
                }
                Line::Torn => torn += usize::from(buf.len() > 1),
                Line::Foreign => {
                    return Err(Error::invalid(format!(
                        "--jsonl {}: line {number} is not a report with \"file\" and \"sha256\": not a wgpu-forge \
                         JSON-lines file (choose another file)",
                        path.display()
                    )))
                }
            }
        }
        Ok(JsonlLog { path: path.to_path_buf(), file, done, lines, torn, needs_newline })
    }

    /// Whether the image at `file` (as the report names it) with this content has a line.
    pub fn has(&self, file: &str, sha256: &str) -> bool {
        self.done.contains(&(file.to_string(), sha256.to_string()))
    }

    /// Append `report` (an object; `sha256` is added) as one line, in one write.
    pub fn append(&mut self, mut report: serde_json::Value, sha256: &str) -> Result<()> {
        let file = report.get("file").and_then(|f| f.as_str()).map(str::to_string);
        let (Some(file), Some(obj)) = (file, report.as_object_mut()) else {
            return Err(Error::invalid("--jsonl: a report without \"file\" (internal error)"));
        };
        obj.insert("sha256".to_string(), serde_json::Value::String(sha256.to_string()));
        let mut line = if self.needs_newline { vec![b'\n'] } else { Vec::new() };
        line.extend(serde_json::to_vec(&report).map_err(|e| Error::invalid(e.to_string()))?);
        line.push(b'\n');
        let n = self
            .file
            .write(&line)
            .map_err(|e| Error::new(ErrorKind::Io, format!("--jsonl {}: cannot append: {e}", self.path.display())))?;
        if n != line.len() {
            return Err(Error::new(
                ErrorKind::Io,
                format!("--jsonl {}: the disk took {n} of {} bytes of a line (full?)", self.path.display(), line.len()),
            ));
        }
        self.done.insert((file, sha256.to_string()));
        self.needs_newline = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_never_collide() {
        let p = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert_eq!(unique_stems(&p(&["a/x.png", "b/x.jpg", "x-2.png"])), ["x", "x-3", "x-2"]);
        assert_eq!(unique_stems(&p(&["x.png", "X.jpg", "x-2.png", "c/x.tif"])), ["x", "X-3", "x-2", "x-4"]);
        // Whatever the names, the stems are unique without case.
        let names = ["a/p.png", "b/p.png", "p-2.jpg", "c/P-2.png", "p-3.png", "d/p.png", "e/p-2.png"];
        let stems = unique_stems(&p(&names));
        let lower: HashSet<String> = stems.iter().map(|s| s.to_lowercase()).collect();
        assert_eq!(lower.len(), names.len(), "{stems:?}");
    }

    #[test]
    fn shards_partition_the_listing() {
        assert_eq!(Shard::parse("1/3").unwrap(), Shard { index: 1, count: 3 });
        for bad in ["3/3", "1", "a/2", "0/0", "-1/2"] {
            assert!(Shard::parse(bad).unwrap_err().message.contains("--shard"), "{bad}");
        }
        let shards: Vec<Shard> = (0..3).map(|i| Shard { index: i, count: 3 }).collect();
        for k in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.takes(k)).count(), 1, "image {k} in exactly one shard");
        }
    }

    #[test]
    fn shard_listing_is_sorted_unique_with_stable_stems() {
        let items: Vec<Item> =
            ["b/x.png", "a/x.png", "c.png", "a/x.png"].iter().map(|p| Ok(PathBuf::from(p))).collect();
        let bad: Item = Err((PathBuf::from("empty/"), Error::invalid("no image files")));
        let all = items.iter().cloned().chain([bad]).collect::<Vec<_>>();
        let (l0, s0) = listing(all.clone(), Some(Shard { index: 0, count: 2 }));
        let (l1, s1) = listing(all, Some(Shard { index: 1, count: 2 }));
        let paths =
            |l: &[Item]| l.iter().filter_map(|r| r.as_ref().ok().map(|p| p.display().to_string())).collect::<Vec<_>>();
        assert_eq!(
            (paths(&l0), s0),
            (vec!["a/x.png".to_string(), "c.png".to_string()], vec!["x".to_string(), "c".to_string()])
        );
        assert_eq!((paths(&l1), s1), (vec!["b/x.png".to_string()], vec!["x-2".to_string()]));
        assert!(l0[0].is_err() && l1[0].is_err(), "a bad argument is named in every shard");
        let (l, s) = listing(items, None);
        assert_eq!((l.len(), s.len()), (4, 4), "without a shard, the listing as given");
    }

    #[test]
    fn log_resumes_and_skips_unfinished_lines() {
        let dir = std::env::temp_dir().join(format!("forge-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("out.jsonl");
        let _ = std::fs::remove_file(&p);
        let mut log = JsonlLog::open(&p).unwrap();
        log.append(serde_json::json!({"file": "a.png", "score": 0.5}), "aa").unwrap();
        log.append(serde_json::json!({"file": "b.png", "score": 0.1}), "bb").unwrap();
        drop(log);
        // A kill in the middle of the third line.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"file\": \"c.png\", \"sco").unwrap();
        drop(f);
        let mut log = JsonlLog::open(&p).unwrap();
        assert_eq!((log.lines, log.torn), (2, 1));
        assert!(log.has("a.png", "aa") && log.has("b.png", "bb"));
        assert!(!log.has("a.png", "bb") && !log.has("c.png", "cc"), "keyed by path and content");
        log.append(serde_json::json!({"file": "c.png"}), "cc").unwrap();
        log.append(serde_json::json!({"file": "d.png"}), "dd").unwrap();
        drop(log);
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[3].contains("\"c.png\"") && lines[3].contains("\"sha256\":\"cc\""), "{text}");
        let log = JsonlLog::open(&p).unwrap();
        assert_eq!((log.lines, log.torn), (4, 1), "the torn line stays and is skipped again");
        // Someone else's file is refused, not appended to.
        std::fs::write(&p, "hello\n").unwrap();
        let e = JsonlLog::open(&p).err().unwrap();
        assert!(e.message.contains("line 1") && e.message.contains("out.jsonl"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
