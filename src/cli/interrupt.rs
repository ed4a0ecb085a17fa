//! SIGINT and SIGTERM. The first asks the command to stop: runs end within
//! a few thousand events, sweeps after the seeds under way, and the command
//! removes what it had not finished writing. A second signal removes every
//! temporary still registered here and ends the process at once.
//!
//! Only commands that watch the flag install the handler: `check` and
//! `merge` keep the default behaviour (killed at once, having written
//! nothing).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use signal_hook::consts::{SIGINT, SIGTERM};

static STOP: AtomicBool = AtomicBool::new(false);
/// The first signal's number (0: none yet).
static SIGNAL: AtomicU8 = AtomicU8::new(0);
/// Temporary files and directories to remove if a second signal ends the process.
static TEMPORARIES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn temporaries() -> MutexGuard<'static, Vec<PathBuf>> {
    TEMPORARIES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts watching for SIGINT and SIGTERM (once) and returns the flag the
/// first of them sets.
pub(crate) fn watch() -> &'static AtomicBool {
    static WATCHING: OnceLock<()> = OnceLock::new();
    WATCHING.get_or_init(|| {
        // Without a handler the default stays: the signal ends the process.
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else { return };
        std::thread::spawn(move || {
            for signal in signals.forever() {
                if !STOP.load(Ordering::SeqCst) {
                    SIGNAL.store(u8::try_from(signal).unwrap_or(SIGINT as u8), Ordering::SeqCst);
                    STOP.store(true, Ordering::SeqCst);
                    continue;
                }
                // The second: clean up and leave, holding the lock so that
                // nothing new is registered (and so created) meanwhile.
                let mut held = temporaries();
                for path in held.drain(..) {
                    remove(&path);
                }
                std::process::exit(i32::from(exit_code()));
            }
        });
    });
    &STOP
}

/// Whether a signal asked the command to stop.
pub(crate) fn requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// The exit code of a command a signal stopped: 128 + the signal's number,
/// as shells report it (130 for SIGINT, 143 for SIGTERM).
pub(crate) fn exit_code() -> u8 {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => 128 + SIGINT as u8,
        s => 128u8.saturating_add(s),
    }
}

/// Runs `create` (which makes the temporary `path`) with `path` registered
/// for removal; it stays registered until [`forget`].
pub(crate) fn create_registered<T>(path: &Path, create: impl FnOnce() -> T) -> T {
    let mut held = temporaries();
    held.push(path.to_path_buf());
    create()
}

/// `path` is no longer a temporary (renamed into place, or removed).
pub(crate) fn forget(path: &Path) {
    temporaries().retain(|p| p != path);
}

/// Removes a temporary file or directory, quietly.
pub(crate) fn remove(path: &Path) {
    if path.is_dir() {
        let _ = std::fs::remove_dir_all(path);
    } else {
        let _ = std::fs::remove_file(path);
    }
}
