//! How long the journal that client lines go to holds them, for the start notice (issue 20).
//!
//! journald deletes its oldest files once a journal reaches its size limit, so at the
//! configured rate limit one source fills a journal in about `size / (max_lines_per_sec ×
//! entry size)`. A journal in RAM (`/run/log/journal`: Raspberry Pi OS's `Storage=volatile`)
//! is lost at a reboot and small (10% of `/run`); the system journal is shared with the
//! host's own entries, which a flood pushes out. At start the daemon says so, in one entry,
//! when the journal its lines go to is in RAM or holds less than [`SMALL`] of one source at
//! its limit, with the one line that gives them a journal of their own.
//!
//! Pure: [`JournaldSettings::apply`] (a journald.conf file), [`parse_size`], [`Retention`]
//! (what journald does with the settings), [`Retention::holds`], [`notice`]. The I/O (which
//! files, which file systems) is [`look`].

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Config, LogTarget, DEFAULT_JOURNAL_SOCKET};

/// About how many bytes one line entry takes in a journal file: measured with systemd 252
/// (200,000 entries into a namespace, the archived files' sizes): 680 B for a line of 20
/// bytes, 720 B for 60, 870 B for 200. journald adds about 25 fields of its own to each
/// entry (`_PID`, `_SYSTEMD_UNIT`, `_SOURCE_REALTIME_TIMESTAMP`, …) and indexes every field.
pub const ENTRY_BYTES: u64 = 700;

/// A journal that holds less than this of one source at its limit is "small".
pub const SMALL: Duration = Duration::from_secs(24 * 3600);

/// journald's default size limit when none is set: 10% of the file system, at most 4 GiB.
pub const DEFAULT_MAX_USE_CAP: u64 = 4 << 30;

/// The namespace the package configures (`/etc/systemd/journald@tcp-listener.conf`).
pub const PACKAGE_NAMESPACE: &str = "tcp-listener";

/// journald's `Storage=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Volatile,
    Persistent,
    Auto,
    None,
}

/// The settings of journald.conf (or journald@NAME.conf) that say where and how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournaldSettings {
    pub storage: Storage,
    /// `SystemMaxUse=`, `RuntimeMaxUse=` (bytes); none: journald's default.
    pub system_max_use: Option<u64>,
    pub runtime_max_use: Option<u64>,
}

impl Default for JournaldSettings {
    fn default() -> Self {
        JournaldSettings {
            storage: Storage::Auto,
            system_max_use: None,
            runtime_max_use: None,
        }
    }
}

impl JournaldSettings {
    /// Applies one file's `[Journal]` section over what earlier files said (a later
    /// assignment wins; an empty one restores the default). What journald would reject is
    /// ignored here: journald then keeps the earlier value too.
    pub fn apply(&mut self, text: &str) {
        let mut in_journal = false;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if line.starts_with('[') {
                in_journal = line == "[Journal]";
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if !in_journal {
                continue;
            }
            let value = value.trim();
            match key.trim() {
                "Storage" => {
                    self.storage = match value {
                        "volatile" => Storage::Volatile,
                        "persistent" => Storage::Persistent,
                        "auto" | "" => Storage::Auto,
                        "none" => Storage::None,
                        _ => continue,
                    }
                }
                "SystemMaxUse" => set_size(&mut self.system_max_use, value),
                "RuntimeMaxUse" => set_size(&mut self.runtime_max_use, value),
                _ => {}
            }
        }
    }
}

fn set_size(slot: &mut Option<u64>, value: &str) {
    if value.is_empty() {
        *slot = None;
    } else if let Some(bytes) = parse_size(value) {
        *slot = Some(bytes);
    }
}

/// A size as journald reads it: a number (decimals allowed) and an optional suffix K, M, G,
/// T, P or E (powers of 1024; B or none: bytes).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let factor: u64 = match suffix.trim() {
        "" | "B" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        "P" => 1 << 50,
        "E" => 1 << 60,
        _ => return None,
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut bytes = whole.checked_mul(factor)?;
    if !fraction.is_empty() {
        let digits = fraction.len().min(9) as u32;
        let fraction: u64 = fraction[..digits as usize].parse().ok()?;
        bytes = bytes.checked_add(fraction * factor / 10u64.pow(digits))?;
    }
    Some(bytes)
}

/// Which journal client lines go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    /// The system journal (`/run/systemd/journal/socket`), shared with the host's entries.
    System,
    /// A journal namespace: `[log] namespace`, or a `journal_socket` of
    /// `/run/systemd/journal.NAME/socket`.
    Namespace(String),
}

impl Which {
    /// The journal of a journal socket path, if it is journald's system or a namespace's.
    pub fn of_socket(path: &Path) -> Option<Which> {
        if path == Path::new(DEFAULT_JOURNAL_SOCKET) {
            return Some(Which::System);
        }
        let name = path
            .strip_prefix("/run/systemd")
            .ok()?
            .to_str()?
            .strip_prefix("journal.")?
            .strip_suffix("/socket")?;
        (!name.is_empty() && !name.contains('/')).then(|| Which::Namespace(name.to_string()))
    }

    /// The journald configuration file that sets it.
    pub fn conf_file(&self) -> String {
        match self {
            Which::System => "/etc/systemd/journald.conf".into(),
            Which::Namespace(name) => format!("/etc/systemd/journald@{name}.conf"),
        }
    }
}

/// What journald does with the settings, on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub which: Which,
    /// Where journald keeps it: in RAM, on disk, or nowhere (`Storage=none`).
    pub storage: Stored,
    /// The size it is kept within, bytes.
    pub max_use: u64,
    /// Whether `max_use` is set in the configuration (`SystemMaxUse=`, `RuntimeMaxUse=`),
    /// rather than journald's default (10% of the file system, at most 4 GiB).
    pub max_use_set: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Ram,
    Disk,
    Nowhere,
}

impl Stored {
    pub fn as_str(self) -> &'static str {
        match self {
            Stored::Ram => "volatile",
            Stored::Disk => "persistent",
            Stored::Nowhere => "none",
        }
    }
}

/// What the host has: whether `/var/log/journal` exists (`Storage=auto` then keeps the
/// journal on disk), and the sizes of the file systems of `/run/log/journal` and
/// `/var/log/journal` (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    pub var_log_journal: bool,
    pub run_fs: u64,
    pub var_fs: u64,
}

impl Retention {
    /// journald's decision for `settings` on `host` (journald.conf(5)): `volatile` keeps the
    /// journal in `/run/log/journal`, `persistent` in `/var/log/journal`, `auto` on disk if
    /// `/var/log/journal` exists; the limit is `SystemMaxUse=` or `RuntimeMaxUse=`, or 10% of
    /// the file system, at most 4 GiB.
    pub fn new(which: Which, settings: &JournaldSettings, host: &Host) -> Retention {
        let storage = match settings.storage {
            Storage::Volatile => Stored::Ram,
            Storage::Persistent => Stored::Disk,
            Storage::Auto if host.var_log_journal => Stored::Disk,
            Storage::Auto => Stored::Ram,
            Storage::None => Stored::Nowhere,
        };
        let (set, fs) = match storage {
            Stored::Disk => (settings.system_max_use, host.var_fs),
            Stored::Ram | Stored::Nowhere => (settings.runtime_max_use, host.run_fs),
        };
        Retention {
            which,
            storage,
            max_use: set.unwrap_or((fs / 10).min(DEFAULT_MAX_USE_CAP)),
            max_use_set: set.is_some(),
        }
    }

    /// How long it holds the lines of one source sending at `max_lines_per_sec` (entries of
    /// [`ENTRY_BYTES`]); none without a limit (0) or when nothing is stored.
    pub fn holds(&self, max_lines_per_sec: u32) -> Option<Duration> {
        if max_lines_per_sec == 0 || self.storage == Stored::Nowhere {
            return None;
        }
        let per_sec = u64::from(max_lines_per_sec) * ENTRY_BYTES;
        Some(Duration::from_secs(self.max_use / per_sec))
    }
}

/// The start notice, when `journal` (where client lines go) is in RAM, keeps nothing, or
/// holds less than [`SMALL`] of one source at `max_lines_per_sec`; none otherwise.
pub fn notice(journal: &Retention, max_lines_per_sec: u32) -> Option<String> {
    let holds = journal.holds(max_lines_per_sec);
    let small = holds.is_none_or(|h| h < SMALL);
    if journal.storage == Stored::Disk && !small {
        return None;
    }
    let mut text = String::new();
    match &journal.which {
        Which::System => text.push_str("client lines go to the system journal"),
        Which::Namespace(name) => {
            let _ = write!(text, "client lines go to the journal namespace {name}");
        }
    }
    let limit = if journal.max_use_set {
        match journal.storage {
            Stored::Disk => "SystemMaxUse=",
            Stored::Ram | Stored::Nowhere => "RuntimeMaxUse=",
        }
    } else {
        match journal.storage {
            Stored::Disk => "10% of its file system",
            Stored::Ram | Stored::Nowhere => "10% of /run",
        }
    };
    let size = size_text(journal.max_use);
    match journal.storage {
        Stored::Nowhere => {
            text.push_str(", which keeps nothing (Storage=none): received lines are not stored");
        }
        Stored::Ram => {
            let _ = write!(
                text,
                ", which is in RAM (/run/log/journal): lost at a reboot, and at most {size} \
                 ({limit})"
            );
        }
        Stored::Disk => {
            let _ = write!(text, ", on disk, at most {size} ({limit})");
        }
    }
    match holds {
        Some(holds) => {
            let _ = write!(
                text,
                ": about {} of lines from one host at max_lines_per_sec = {max_lines_per_sec} \
                 (about {ENTRY_BYTES} bytes an entry)",
                duration_text(holds)
            );
        }
        None if journal.storage != Stored::Nowhere => {
            text.push_str(
                ": with max_lines_per_sec = 0 (no limit) one host can fill it as fast as it \
                 sends",
            );
        }
        None => {}
    }
    match &journal.which {
        Which::System => {
            if journal.storage != Stored::Nowhere {
                text.push_str(
                    ", and a host that sends that much pushes out the system's own entries too",
                );
            }
            let _ = write!(
                text,
                ". To give received lines a journal of their own, on disk and bounded: \
                 namespace = \"{PACKAGE_NAMESPACE}\" in [log]"
            );
        }
        Which::Namespace(_) => {
            let conf = journal.which.conf_file();
            let _ = write!(
                text,
                " (the system's own entries are in another journal: not pushed out). To keep \
                 more: {} in {conf}",
                match journal.storage {
                    Stored::Disk => "a larger SystemMaxUse=",
                    Stored::Ram | Stored::Nowhere => "Storage=persistent",
                }
            );
        }
    }
    Some(text)
}

/// `9.8M`, `500M`, `4.0G`, as journald writes sizes (powers of 1024).
pub fn size_text(bytes: u64) -> String {
    let mib = bytes as f64 / (1u64 << 20) as f64;
    if mib >= 1024.0 {
        format!("{:.1}G", mib / 1024.0)
    } else if mib >= 10.0 {
        format!("{mib:.0}M")
    } else {
        format!("{mib:.1}M")
    }
}

/// `14 s`, `12 min`, `19 h`, `8 days`.
pub fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172_800 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// The journald configuration files of `which`, in the order journald reads them: the main
/// file, then the drop-ins (`*.conf` of the `.conf.d` directories under /etc, /run,
/// /usr/local/lib and /usr/lib; a name in an earlier directory hides the same name in later
/// ones), sorted by file name.
pub fn conf_files(which: &Which) -> Vec<PathBuf> {
    let base = match which {
        Which::System => "journald.conf".to_string(),
        Which::Namespace(name) => format!("journald@{name}.conf"),
    };
    let mut files = vec![PathBuf::from(format!("/etc/systemd/{base}"))];
    let mut dropins: Vec<(String, PathBuf)> = Vec::new();
    for dir in ["/etc", "/run", "/usr/local/lib", "/usr/lib"] {
        let dir = PathBuf::from(format!("{dir}/systemd/{base}.d"));
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".conf") && !dropins.iter().any(|(n, _)| *n == name) {
                dropins.push((name, entry.path()));
            }
        }
    }
    dropins.sort();
    files.extend(dropins.into_iter().map(|(_, path)| path));
    files
}

/// The journal client lines go to under `config`, as journald on this host would keep it;
/// none when they do not go to journald, or to a socket that is neither the system's nor a
/// namespace's.
pub fn look(config: &Config) -> Option<Retention> {
    if config.log.target != LogTarget::Journald {
        return None;
    }
    let which = match &config.log.namespace {
        Some(name) => Which::Namespace(name.clone()),
        None => Which::of_socket(&config.log.journal_socket)?,
    };
    let mut settings = JournaldSettings::default();
    for file in conf_files(&which) {
        if let Ok(text) = std::fs::read_to_string(&file) {
            settings.apply(&text);
        }
    }
    // (The casts are no-ops here; on 32-bit ARM the fragment size is a 32-bit c_ulong.)
    #[allow(clippy::unnecessary_cast)]
    let fs_size = |paths: &[&str]| {
        paths
            .iter()
            .find_map(|p| nix::sys::statvfs::statvfs(*p).ok())
            .map_or(0, |s| s.blocks() as u64 * s.fragment_size() as u64)
    };
    let host = Host {
        var_log_journal: Path::new("/var/log/journal").is_dir(),
        run_fs: fs_size(&["/run/log/journal", "/run/log", "/run"]),
        var_fs: fs_size(&["/var/log/journal", "/var/log", "/var"]),
    };
    Some(Retention::new(which, &settings, &host))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    #[test]
    fn sizes_are_read_as_journald_reads_them() {
        assert_eq!(parse_size("500M"), Some(500 * MB));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("1.5G"), Some(3 << 29));
        assert_eq!(parse_size("200K"), Some(200 << 10));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("12B"), Some(12));
        assert_eq!(parse_size("10%"), None);
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("."), None);
        assert_eq!(parse_size("99999999999E"), None);
    }

    #[test]
    fn the_last_assignment_in_the_journal_section_wins() {
        let mut s = JournaldSettings::default();
        // Raspberry Pi OS's drop-in.
        s.apply("[Journal]\nStorage=volatile\n");
        assert_eq!(s.storage, Storage::Volatile);
        s.apply(
            "# comment\n[Journal]\n#Storage=none\nStorage=persistent\nSystemMaxUse=500M\n\
             [Other]\nStorage=none\n",
        );
        assert_eq!(s.storage, Storage::Persistent);
        assert_eq!(s.system_max_use, Some(500 * MB));
        s.apply("[Journal]\nSystemMaxUse=\nStorage=bogus\nRuntimeMaxUse = 20M\n");
        assert_eq!(s.system_max_use, None, "empty: the default again");
        assert_eq!(
            s.storage,
            Storage::Persistent,
            "an invalid value changes nothing"
        );
        assert_eq!(s.runtime_max_use, Some(20 * MB));
    }

    #[test]
    fn a_socket_path_names_the_system_journal_or_a_namespace() {
        assert_eq!(
            Which::of_socket(Path::new("/run/systemd/journal/socket")),
            Some(Which::System)
        );
        assert_eq!(
            Which::of_socket(Path::new("/run/systemd/journal.tcp-listener/socket")),
            Some(Which::Namespace("tcp-listener".into()))
        );
        assert_eq!(Which::of_socket(Path::new("/tmp/socket")), None);
        assert_eq!(
            Which::of_socket(Path::new("/run/systemd/journal./socket")),
            None
        );
    }

    /// The Pi: Raspberry Pi OS's Storage=volatile, 1 GB of RAM so /run is 98 MB.
    fn pi(settings: &str, which: Which) -> Retention {
        let mut s = JournaldSettings::default();
        s.apply(settings);
        let host = Host {
            var_log_journal: false,
            run_fs: 98 * MB,
            var_fs: 28 << 30,
        };
        Retention::new(which, &s, &host)
    }

    #[test]
    fn storage_and_limit_are_journalds() {
        let j = pi("[Journal]\nStorage=volatile\n", Which::System);
        assert_eq!(
            (j.storage, j.max_use, j.max_use_set),
            (Stored::Ram, 98 * MB / 10, false)
        );
        // auto: on disk only if /var/log/journal exists.
        let j = pi("", Which::System);
        assert_eq!(j.storage, Stored::Ram);
        let mut s = JournaldSettings::default();
        let host = Host {
            var_log_journal: true,
            run_fs: 98 * MB,
            var_fs: 28 << 30,
        };
        let j = Retention::new(Which::System, &s, &host);
        assert_eq!((j.storage, j.max_use), (Stored::Disk, (28 << 30) / 10));
        // At most 4 GiB by default.
        let big = Host {
            var_fs: 100 << 30,
            ..host
        };
        assert_eq!(Retention::new(Which::System, &s, &big).max_use, 4 << 30);
        s.apply("[Journal]\nSystemMaxUse=500M\n");
        let j = Retention::new(Which::System, &s, &host);
        assert_eq!((j.max_use, j.max_use_set), (500 * MB, true));
    }

    #[test]
    fn how_long_it_holds_is_its_size_over_one_source_at_its_limit() {
        let j = pi("[Journal]\nStorage=volatile\n", Which::System);
        // 9.8 MB / (1000 lines/s × 700 B) = 14 s.
        assert_eq!(j.holds(1000), Some(Duration::from_secs(14)));
        assert_eq!(j.holds(50), Some(Duration::from_secs(293)));
        assert_eq!(j.holds(0), None);
        let ns = pi(
            "[Journal]\nStorage=persistent\nSystemMaxUse=500M\n",
            Which::Namespace("tcp-listener".into()),
        );
        assert_eq!(ns.holds(1000), Some(Duration::from_secs(748)));
        assert_eq!(ns.holds(1), Some(Duration::from_secs(748_982)));
    }

    #[test]
    fn the_notice_says_where_how_long_and_the_line_that_isolates_it() {
        let j = pi("[Journal]\nStorage=volatile\n", Which::System);
        assert_eq!(
            notice(&j, 1000).unwrap(),
            "client lines go to the system journal, which is in RAM (/run/log/journal): lost \
             at a reboot, and at most 9.8M (10% of /run): about 14 s of lines from one host at \
             max_lines_per_sec = 1000 (about 700 bytes an entry), and a host that sends that \
             much pushes out the system's own entries too. To give received lines a journal \
             of their own, on disk and bounded: namespace = \"tcp-listener\" in [log]"
        );
        assert!(notice(&j, 0)
            .unwrap()
            .contains("with max_lines_per_sec = 0 (no limit) one host can fill it"));
        // On disk and holding a day or more: nothing to say.
        let host = Host {
            var_log_journal: true,
            run_fs: 98 * MB,
            var_fs: 28 << 30,
        };
        let disk = Retention::new(Which::System, &JournaldSettings::default(), &host);
        assert_eq!(disk.holds(10), Some(Duration::from_secs(429_496)));
        assert_eq!(notice(&disk, 10), None);
        // Less than a day: said.
        assert_eq!(
            notice(&disk, 1000).unwrap(),
            "client lines go to the system journal, on disk, at most 2.8G (10% of its file \
             system): about 71 min of lines from one host at max_lines_per_sec = 1000 (about \
             700 bytes an entry), and a host that sends that much pushes out the system's own \
             entries too. To give received lines a journal of their own, on disk and bounded: \
             namespace = \"tcp-listener\" in [log]"
        );
        // The package's namespace at the default limit: small, but apart.
        let ns = pi(
            "[Journal]\nStorage=persistent\nSystemMaxUse=500M\n",
            Which::Namespace("tcp-listener".into()),
        );
        assert_eq!(
            notice(&ns, 1000).unwrap(),
            "client lines go to the journal namespace tcp-listener, on disk, at most 500M \
             (SystemMaxUse=): about 12 min of lines from one host at max_lines_per_sec = 1000 \
             (about 700 bytes an entry) (the system's own entries are in another journal: not \
             pushed out). To keep more: a larger SystemMaxUse= in \
             /etc/systemd/journald@tcp-listener.conf"
        );
        assert!(notice(&ns, 10).unwrap().contains("about 20 h of lines"));
        assert_eq!(notice(&ns, 1), None, "8 days at 1 line/s");
        let ram = pi(
            "[Journal]\nStorage=volatile\n",
            Which::Namespace("x".into()),
        );
        assert!(notice(&ram, 10)
            .unwrap()
            .ends_with("To keep more: Storage=persistent in /etc/systemd/journald@x.conf"));
        let none = pi("[Journal]\nStorage=none\n", Which::System);
        assert!(notice(&none, 1000).unwrap().starts_with(
            "client lines go to the system journal, which keeps nothing (Storage=none): \
                 received lines are not stored. To give"
        ));
    }

    #[test]
    fn durations_and_sizes_read_as_people_write_them() {
        assert_eq!(duration_text(Duration::from_secs(14)), "14 s");
        assert_eq!(duration_text(Duration::from_secs(748)), "12 min");
        assert_eq!(duration_text(Duration::from_secs(70_000)), "19 h");
        assert_eq!(duration_text(Duration::from_secs(748_982)), "8 days");
        assert_eq!(size_text(98 * MB / 10), "9.8M");
        assert_eq!(size_text(500 * MB), "500M");
        assert_eq!(size_text(4 << 30), "4.0G");
    }
}
