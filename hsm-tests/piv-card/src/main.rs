//! piv-card: TEST-ONLY software PIV card that looks enough like a YubiKey 5 for the
//! `yubikey` crate.  Nitrokey's piv-authenticator applet on trussed's virt platform,
//! attached to vsmartcard-vpcd (which pcscd loads as a reader driver) with `vpicc`.
//!
//!     piv-card [--port PORT] [--serial N] [--state DIR] [--vpcd-timeout SECS] [--verbose]
//!
//! Keys are generated from a deterministic RNG: never use this for anything real.
//! See README.md for how the test suite runs it.

mod card;
mod platform;

use std::{
    fs::{self, File},
    net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream},
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use trussed::virt::{StorageConfig, StoreConfig};

const USAGE: &str =
    "usage: piv-card [--port PORT] [--serial N] [--state DIR] [--vpcd-timeout SECS] [--verbose]

TEST ONLY software PIV card (YubiKey 5.4.3 look-alike) for vsmartcard-vpcd.
  --port PORT          vpcd port on 127.0.0.1 (default 35963; vpcd's second slot is 35964)
  --serial N           serial answered to GET SERIAL (decimal, default 10000001)
  --state DIR          keep the card's flash in DIR (created if missing) so a restart
                       keeps keys, PIN and certificates; default: RAM only
  --vpcd-timeout SECS  give up (exit 1) after SECS without a vpcd connection (default 10)
  --verbose            print connection events and the INS byte / status word of each APDU
                       to stderr (never APDU data: VERIFY carries the PIN)
Exit: 0 on SIGTERM/SIGINT, 1 when vpcd stays unreachable, 2 on bad usage or state dir.";

static STOP: AtomicBool = AtomicBool::new(false);
/// A clone of the live vpcd socket, so the signal thread can unblock a pending read.
static LIVE: Mutex<Option<TcpStream>> = Mutex::new(None);

struct Args {
    port: u16,
    serial: u32,
    state: Option<PathBuf>,
    vpcd_timeout: Duration,
    verbose: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: vpicc::DEFAULT_PORT,
        serial: 10_000_001,
        state: None,
        vpcd_timeout: Duration::from_secs(10),
        verbose: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => {
                args.port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--serial" => {
                args.serial = value("--serial")?
                    .parse()
                    .map_err(|e| format!("--serial: {e}"))?
            }
            "--state" => args.state = Some(PathBuf::from(value("--state")?)),
            "--vpcd-timeout" => {
                let secs: u64 = value("--vpcd-timeout")?
                    .parse()
                    .map_err(|e| format!("--vpcd-timeout: {e}"))?;
                args.vpcd_timeout = Duration::from_secs(secs);
            }
            "--verbose" | "-v" => args.verbose = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

/// Block SIGTERM/SIGINT/SIGHUP in every thread (call before spawning any) and handle
/// them in one thread: set STOP and shut the vpcd socket down so the main loop wakes,
/// finishes the APDU in progress and returns; the storage is then unmounted cleanly.
fn install_signal_thread() {
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        thread::spawn(move || {
            let mut sig: libc::c_int = 0;
            libc::sigwait(&set, &mut sig);
            STOP.store(true, Ordering::SeqCst);
            if let Some(s) = LIVE.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                let _ = s.shutdown(Shutdown::Both);
            }
        });
    }
}

/// Exclusive lock on DIR/lock so two cards never share (and corrupt) one flash image.
fn lock_state_dir(dir: &Path) -> Result<File, String> {
    fs::create_dir_all(dir).map_err(|e| format!("--state {}: {e}", dir.display()))?;
    let lock =
        File::create(dir.join("lock")).map_err(|e| format!("--state {}: {e}", dir.display()))?;
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(format!(
            "--state {}: in use by another piv-card",
            dir.display()
        ));
    }
    Ok(lock)
}

/// File-backed internal + external flash (64 KiB littlefs images), RAM volatile.
/// The images are formatted under temporary names and renamed into place, so a card
/// killed during its very first start never leaves an unformatted image behind.
fn state_store(dir: &Path) -> Result<StoreConfig<'static>, String> {
    let internal = dir.join("internal.lfs");
    let external = dir.join("external.lfs");
    if !internal.exists() || !external.exists() {
        let tmp_i = dir.join("internal.lfs.new");
        let tmp_e = dir.join("external.lfs.new");
        let _ = fs::remove_file(&tmp_i);
        let _ = fs::remove_file(&tmp_e);
        let _ = fs::remove_file(&internal);
        let _ = fs::remove_file(&external);
        StoreConfig {
            internal: StorageConfig::filesystem(tmp_i.clone()),
            external: StorageConfig::filesystem(tmp_e.clone()),
            volatile: StorageConfig::ram(),
        }
        .with_store(|_| ());
        fs::rename(&tmp_e, &external).map_err(|e| e.to_string())?;
        fs::rename(&tmp_i, &internal).map_err(|e| e.to_string())?;
    }
    Ok(StoreConfig {
        internal: StorageConfig::filesystem(internal),
        external: StorageConfig::filesystem(external),
        volatile: StorageConfig::ram(),
    })
}

fn set_quickack(stream: &TcpStream) {
    // Linux clears TCP_QUICKACK on its own; set it again before every read.  Without it
    // vpcd's two-part messages meet delayed ACKs and each APDU costs ~100 ms.
    let _ = socket2::SockRef::from(stream).set_quickack(true);
}

/// Serve vpcd until a signal (Ok) or until vpcd stays away for `vpcd_timeout` (Err).
fn serve(card: &mut card::PivCard<'_>, args: &Args) -> Result<(), String> {
    let addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), args.port);
    let mut last_seen = Instant::now();
    let mut connected_before = false;
    loop {
        if STOP.load(Ordering::SeqCst) {
            return Ok(());
        }
        let stream = match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(s) => s,
            Err(e) => {
                if last_seen.elapsed() >= args.vpcd_timeout {
                    return Err(format!(
                        "no vpcd at {addr} for {} s ({e}); giving up",
                        args.vpcd_timeout.as_secs()
                    ));
                }
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        set_quickack(&stream);
        let control = match stream.try_clone() {
            Ok(c) => c,
            Err(e) => return Err(format!("socket clone: {e}")),
        };
        *LIVE.lock().unwrap_or_else(|e| e.into_inner()) = control.try_clone().ok();
        if STOP.load(Ordering::SeqCst) {
            return Ok(());
        }
        if args.verbose {
            eprintln!("piv-card: connected to vpcd at {addr}");
        }
        if connected_before {
            // A new vpcd connection is a new "insertion".
            card.reset_applet("vpcd reconnect");
        }
        connected_before = true;

        let mut conn = vpicc::Connection::from(stream);
        let err = loop {
            set_quickack(&control);
            if let Err(e) = conn.poll(card) {
                break e;
            }
        };
        *LIVE.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if STOP.load(Ordering::SeqCst) {
            return Ok(());
        }
        if args.verbose {
            eprintln!("piv-card: vpcd connection lost ({err}); reconnecting");
        }
        last_seen = Instant::now();
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("piv-card: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    install_signal_thread();

    let (_lock, store) = match &args.state {
        Some(dir) => match lock_state_dir(dir).and_then(|l| Ok((Some(l), state_store(dir)?))) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("piv-card: {e}");
                return ExitCode::from(2);
            }
        },
        None => (None, StoreConfig::ram()),
    };

    let result = platform::with_client(store, args.serial, |client| {
        let mut card = card::PivCard::new(client, args.serial, args.verbose);
        serve(&mut card, &args)
    });
    match result {
        Ok(()) => {
            if args.verbose {
                eprintln!("piv-card: stopped");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("piv-card: {e}");
            ExitCode::from(1)
        }
    }
}
