//! tracing setup: human output by default, JSON lines with `--log-format json`, and the
//! systemd journal's native protocol with `journald` (each event's fields become journal
//! fields: `journalctl -u harmony-appliance TARGET=consensus F_NUMBER=1200`).

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// The journal's name for this program (`journalctl -t harmony-appliance`).
pub const SYSLOG_IDENTIFIER: &str = "harmony-appliance";

pub fn init(format: &str, filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    if format == "journald" {
        match tracing_journald::layer() {
            Ok(layer) => {
                let layer = layer.with_syslog_identifier(SYSLOG_IDENTIFIER.into());
                let _ = tracing_subscriber::registry()
                    .with(filter)
                    .with(layer)
                    .try_init();
                return;
            }
            Err(e) => {
                // Outside systemd (no journal socket): keep the fields, as JSON on stderr.
                eprintln!(
                    "log.format = \"journald\": the journal socket cannot be opened ({e}); \
                     logging JSON lines to stderr instead"
                );
                return init("json", &filter.to_string());
            }
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
