//! Files in and out.
//!
//! Reading the files a user names (images, weights, checkpoints): only regular files are opened,
//! since a FIFO would block a read forever and `/dev/zero` or `/dev/urandom` never end, and whole
//! reads stop at a size cap instead of growing without bound. Errors name the file and what it is.
//!
//! Writing: every output goes to a temporary sibling `.NAME.tmp-PID`, is flushed to disk, and is
//! renamed into place, so a crash or a full disk never leaves a half-written file under its final
//! name. [`write_set`] does this for the files that belong together (one image's mask, maps,
//! overlay and report): all are written before the first is renamed, the last one (the report)
//! marks a complete set, and a set that fails is removed whole. Temporary files of processes that
//! died (SIGKILL, power loss) are removed by [`remove_stale_temps`].

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

/// What a path that is not a regular file is, in words.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a folder";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
    }
    "not a regular file"
}

/// Open `path` for reading if it is a regular file (symbolic links are followed); return the
/// file and its length. `what` names the file's role in errors ("image", "weights").
pub fn open_regular(path: &Path, what: &str) -> Result<(File, u64)> {
    let io = |e: std::io::Error| Error::new(ErrorKind::Io, format!("cannot read {what} {}: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(Error::invalid(format!(
            "{what} {}: {}, not a regular file; only regular files are read",
            path.display(),
            kind_of(&meta)
        )));
    }
    let f = File::open(path).map_err(io)?;
    // The path may have been replaced between the check and the open.
    let meta = f.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(Error::invalid(format!("{what} {}: {}, not a regular file", path.display(), kind_of(&meta))));
    }
    Ok((f, meta.len()))
}

/// Hex sha256 of a regular file's bytes, read in 1 MiB pieces. `what` names the file's role in
/// errors, as in [`open_regular`].
pub fn sha256_file(path: &Path, what: &str) -> Result<String> {
    use sha2::{Digest, Sha256};
    let (mut f, _) = open_regular(path, what)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read {what} {}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Hex sha256 of bytes already in memory (the same digest as [`sha256_file`] of a file holding
/// them).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Read a whole regular file of at most `max_bytes` bytes. `raise` says how to allow more (an
/// option's name), for the error.
pub fn read_regular(path: &Path, max_bytes: u64, what: &str, raise: &str) -> Result<Vec<u8>> {
    let (f, len) = open_regular(path, what)?;
    let too_big = |n: u64| {
        Error::invalid(format!("{what} {}: {n} bytes is over the limit of {max_bytes} bytes ({raise})", path.display()))
    };
    if len > max_bytes {
        return Err(too_big(len));
    }
    // The file may grow while it is read: read at most one byte past the cap to notice.
    let mut bytes = Vec::with_capacity(len as usize);
    f.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read {what} {}: {e}", path.display())))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The temporary sibling an output is written to before its rename.
pub fn temp_path(path: &Path) -> Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| Error::invalid(format!("{}: not a file name", path.display())))?;
    Ok(parent_dir(path).join(format!(".{}{TEMP_MARK}{}", name.to_string_lossy(), std::process::id())))
}

const TEMP_MARK: &str = ".tmp-";

fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, format!("cannot {what} {}: {e}", path.display()))
}

/// Write `bytes` to `path` atomically (see the module documentation).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_set(&[(path.to_path_buf(), bytes.to_vec())])
}

/// Write a file through `write` (which gets the temporary path), flush it to disk, and rename it
/// over `path`; on any failure the temporary file is removed and `path` is left as it was.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if path.is_dir() {
        return Err(Error::new(ErrorKind::Io, format!("cannot write {}: a folder has that name", path.display())));
    }
    let tmp = temp_path(path)?;
    let result = write(&tmp)
        .and_then(|()| sync_file(&tmp))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| io_error("rename a temporary file onto", path, e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    } else {
        sync_dir(parent_dir(path));
    }
    result
}

fn sync_file(path: &Path) -> Result<()> {
    File::open(path).and_then(|f| f.sync_all()).map_err(|e| io_error("flush", path, e))
}

/// Make renames in `dir` durable where the platform allows it (best effort).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Write files that belong together so that they appear as a set: every file is written to its
/// temporary sibling and flushed first; only then are they renamed into place, in order (put the
/// file that marks a complete set last). If anything fails, every temporary file is removed and
/// so is every file of the set already renamed, and the error says which file failed.
pub fn write_set(files: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    let mut temps: Vec<PathBuf> = Vec::with_capacity(files.len());
    let cleanup = |temps: &[PathBuf]| {
        for t in temps {
            let _ = std::fs::remove_file(t);
        }
    };
    for (path, bytes) in files {
        if path.is_dir() {
            cleanup(&temps);
            return Err(Error::new(ErrorKind::Io, format!("cannot write {}: a folder has that name", path.display())));
        }
        let tmp = temp_path(path)?;
        temps.push(tmp.clone());
        let written =
            File::create(&tmp).map_err(|e| io_error("create a temporary file for", path, e)).and_then(|mut f| {
                f.write_all(bytes).map_err(|e| io_error("write", path, e))?;
                f.sync_all().map_err(|e| io_error("flush", path, e))
            });
        if let Err(e) = written {
            cleanup(&temps);
            return Err(e);
        }
    }
    for (i, ((path, _), tmp)) in files.iter().zip(&temps).enumerate() {
        if let Err(e) = std::fs::rename(tmp, path) {
            cleanup(&temps[i..]);
            for (done, _) in &files[..i] {
                let _ = std::fs::remove_file(done);
            }
            let mut err = io_error("rename a temporary file onto", path, e);
            if i > 0 {
                err = err.context(format!("the {i} files of this set already in place were removed"));
            }
            return Err(err);
        }
    }
    let mut dirs: Vec<&Path> = files.iter().map(|(p, _)| parent_dir(p)).collect();
    dirs.dedup();
    for d in dirs {
        sync_dir(d);
    }
    Ok(())
}

/// Whether process `pid` is alive: known on systems with /proc, else `None`.
fn pid_alive(pid: u32) -> Option<bool> {
    Path::new("/proc/self").exists().then(|| Path::new(&format!("/proc/{pid}")).exists())
}

/// Remove the temporary files (`.NAME.tmp-PID`) in `dir` left by processes that are no longer
/// running (where the system cannot tell, those older than a day); returns how many went.
pub fn remove_stale_temps(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    let me = std::process::id();
    let mut removed = 0;
    for entry in rd.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Some(pid) =
            name.strip_prefix('.').and_then(|n| n.rsplit_once(TEMP_MARK)).and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let stale = match pid_alive(pid) {
            Some(alive) => !alive && pid != me,
            None => entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 24 * 3600)),
        };
        if stale && entry.file_type().is_ok_and(|t| t.is_file()) && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streamed digest equals the digest of the bytes (a file over one 1 MiB piece), and a
    /// folder is refused with its role and path named.
    #[test]
    fn sha256_of_a_file_streams_and_refuses_folders() {
        let dir = tmp_dir("sha");
        let bytes: Vec<u8> = (0..(3 << 19) + 7).map(|i| (i * 31 % 251) as u8).collect();
        let path = dir.join("x.bin");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(sha256_file(&path, "image").unwrap(), sha256_hex(&bytes));
        // The digest itself, of a known input.
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let e = sha256_file(&dir, "image").unwrap_err().message;
        assert!(e.contains("image") && e.contains("forge-fileio-sha") && e.contains("a folder"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn refuses_folders_devices_and_fifos_and_caps_sizes() {
        let dir = tmp_dir("read");
        let e = read_regular(&dir, 100, "image", "--max-pixels").unwrap_err().message;
        assert!(e.contains("a folder") && e.contains("forge-fileio-read"), "{e}");
        #[cfg(unix)]
        {
            let e = read_regular(Path::new("/dev/zero"), 100, "image", "--max-pixels").unwrap_err().message;
            assert!(e.contains("/dev/zero") && e.contains("character device"), "{e}");
            // A FIFO nobody writes to: refused at once instead of blocking the read.
            let fifo = dir.join("x.png");
            let ok = std::process::Command::new("mkfifo").arg(&fifo).status().map(|s| s.success());
            assert_eq!(ok.ok(), Some(true), "mkfifo");
            let e = read_regular(&fifo, 100, "image", "--max-pixels").unwrap_err().message;
            assert!(e.contains("x.png") && e.contains("FIFO"), "{e}");
        }
        let f = dir.join("a.bin");
        std::fs::write(&f, [7u8; 101]).unwrap();
        assert_eq!(read_regular(&f, 101, "image", "--max-pixels").unwrap().len(), 101);
        let e = read_regular(&f, 100, "weights", "raise it with --foo").unwrap_err().message;
        assert!(e.contains("a.bin") && e.contains("101 bytes") && e.contains("--foo"), "{e}");
        let e = read_regular(&dir.join("missing.png"), 100, "image", "-").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Io);
        assert!(e.message.contains("missing.png"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tmp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("forge-fileio-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn atomic_write_replaces_whole_and_leaves_no_temporary() {
        let dir = tmp_dir("atomic");
        let p = dir.join("a.bin");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        assert_eq!(names(&dir), ["a.bin"]);
        // A missing folder: the temporary file cannot be created; the error names the target.
        let e = write_atomic(&dir.join("no/such/dir/x.bin"), b"x").unwrap_err();
        assert!(e.message.contains("no/such/dir"), "{}", e.message);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The write fails where it is placed (the target is a folder, the parent is a file, the
    /// folder is read only): an error naming the target, the old content intact, no temporary
    /// file left; for both writers.
    #[test]
    fn failing_writes_keep_the_old_file_and_leave_no_temporary() {
        let dir = tmp_dir("rename");
        let folder = dir.join("target.png");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("inside"), b"keep").unwrap();
        let via_callback = write_atomic_with(&folder, |tmp| std::fs::write(tmp, b"new").map_err(Error::from));
        for e in [write_atomic(&folder, b"new").unwrap_err(), via_callback.unwrap_err()] {
            assert_eq!(e.kind, ErrorKind::Io);
            assert!(e.message.contains("target.png"), "{e}");
        }
        assert_eq!(std::fs::read(folder.join("inside")).unwrap(), b"keep");
        assert_eq!(names(&dir), ["target.png"], "no temporary file left");
        // The rename itself fails: a folder appears under the name after the temporary file was
        // written (the check before writing cannot see it).
        let late = dir.join("late.png");
        let e = write_atomic_with(&late, |tmp| {
            std::fs::write(tmp, b"new")?;
            std::fs::create_dir(&late)?;
            std::fs::write(late.join("inside"), b"keep")?;
            Ok(())
        })
        .unwrap_err();
        assert!(e.message.contains("rename") && e.message.contains("late.png"), "{e}");
        assert_eq!(std::fs::read(late.join("inside")).unwrap(), b"keep");
        assert_eq!(names(&dir), ["late.png", "target.png"], "no temporary file left");
        // The parent is a regular file.
        std::fs::write(dir.join("plain"), b"old").unwrap();
        assert!(write_atomic(&dir.join("plain/x.png"), b"new").is_err());
        assert_eq!(std::fs::read(dir.join("plain")).unwrap(), b"old");
        // A read-only folder (root ignores permissions, so only where they bind).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let ro = dir.join("ro");
            std::fs::create_dir(&ro).unwrap();
            std::fs::write(ro.join("x.png"), b"old").unwrap();
            std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
            if File::create(ro.join("probe")).is_err() {
                let e = write_atomic(&ro.join("x.png"), b"new").unwrap_err();
                assert!(e.message.contains("x.png"), "{e}");
                assert_eq!(std::fs::read(ro.join("x.png")).unwrap(), b"old");
                assert_eq!(names(&ro), ["x.png"]);
            } else {
                println!("running as root: the read-only folder case cannot fail here");
            }
            std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A set appears whole or not at all: when one member cannot be placed, the members before it
    /// are removed again, older files of the same names that the set did not reach stay, and no
    /// temporary file is left.
    #[test]
    fn sets_are_written_whole_or_not_at_all() {
        let dir = tmp_dir("set");
        let set = |names: &[&str]| -> Vec<(PathBuf, Vec<u8>)> {
            names.iter().map(|n| (dir.join(n), format!("new {n}").into_bytes())).collect()
        };
        write_set(&set(&["x.mask.png", "x.json"])).unwrap();
        assert_eq!(std::fs::read(dir.join("x.json")).unwrap(), b"new x.json");
        std::fs::write(dir.join("y.json"), b"old y.json").unwrap();
        std::fs::create_dir(dir.join("y.overlay.png")).unwrap();
        let e = write_set(&set(&["y.mask.png", "y.overlay.png", "y.json"])).unwrap_err();
        assert!(e.message.contains("y.overlay.png"), "{e}");
        assert!(!dir.join("y.mask.png").exists());
        assert_eq!(std::fs::read(dir.join("y.json")).unwrap(), b"old y.json");
        assert_eq!(names(&dir), ["x.json", "x.mask.png", "y.json", "y.overlay.png"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Temporary files of dead processes go; those of live ones (this one) and other files stay.
    #[cfg(target_os = "linux")]
    #[test]
    fn stale_temporaries_of_dead_processes_are_removed() {
        let dir = tmp_dir("stale");
        // A PID far above any the kernel hands out (pid_max is at most 2^22).
        let dead = 4_000_000_000u32;
        for n in [format!(".x.mask.png.tmp-{dead}"), format!(".y.json.tmp-{}", std::process::id())] {
            std::fs::write(dir.join(n), b"partial").unwrap();
        }
        std::fs::write(dir.join("x.mask.png"), b"keep").unwrap();
        std::fs::write(dir.join(".hidden.tmp-notapid"), b"keep").unwrap();
        let removed = remove_stale_temps(&dir);
        let me = format!(".y.json.tmp-{}", std::process::id());
        assert_eq!(pid_alive(std::process::id()), Some(true), "this test needs /proc");
        assert_eq!(removed, 1);
        assert_eq!(names(&dir), [".hidden.tmp-notapid".to_string(), me, "x.mask.png".into()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
